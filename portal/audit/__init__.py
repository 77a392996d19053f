"""Append-only operation log (操作ログ): who did what to which object, when, from where."""
