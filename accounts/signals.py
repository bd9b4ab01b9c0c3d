"""What accounts tells the apps built on it, which it may not import (docs/architecture.md).

Both are sent inside the transaction of the change, with `mailbox`, the saved Mailbox.
"""

from __future__ import annotations

from django.dispatch import Signal

# A person saved a mailbox's settings (the form, `manage.py mailbox add`): new settings deserve a
# fresh start from whatever keeps state about the mailbox (the fetch engine: no pause, due at once).
mailbox_settings_saved = Signal()

# A mailbox was enabled or disabled.
mailbox_enabled_changed = Signal()
