# Copyright: openclaw.standalone contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Note that this doc fragment is **PRIVATE** to the collection. It can have
# breaking changes at any time.

from __future__ import annotations


class ModuleDocFragment:
    # Standard attribute wording, shared by every module of the collection.
    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
  idempotent:
    description:
      - When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
"""

    ACTIONGROUP_OPENCLAW = r"""
options: {}
attributes:
  action_group:
    description: Use C(group/openclaw.standalone.openclaw) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - openclaw.standalone.openclaw
"""
