# Copyright: openclaw.standalone contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reads the SQL migrations on the controller and hands them to the module."""

from __future__ import annotations

from ansible_collections.openclaw.standalone.plugins.plugin_utils.migration_files import MigrationFilesAction


class ActionModule(MigrationFilesAction):
    MODULE = "openclaw.standalone.openclaw_db_schema"
