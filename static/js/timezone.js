// Tell the server the reader's time zone, so dates are shown in it (webmail/middleware.py).
(function () {
  "use strict";
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  // IANA names ("Europe/Istanbul") are safe in a cookie as they are; the server checks them.
  if (zone && /^[A-Za-z0-9_+\/-]+$/.test(zone) && !document.cookie.split("; ").includes("tz=" + zone)) {
    document.cookie = "tz=" + zone + "; path=/; max-age=31536000; SameSite=Lax";
  }
}());
