"""Audit action tags, written source:subject:action."""

from enum import StrEnum


class AuditAction(StrEnum):
    LOGIN_SUCCEEDED = "staff:session:login"
    LOGIN_FAILED = "staff:session:login-failed"
    LOGIN_LOCKED = "staff:session:locked"
    LOGOUT = "staff:session:logout"
    MFA_ENROLLED = "staff:mfa:enrolled"
    MFA_FAILED = "staff:mfa:failed"
    MFA_RECOVERY_USED = "staff:mfa:recovery-code-used"
    MFA_RESET = "admin:mfa:reset"
    PASSWORD_SET = "staff:password:set"
    USER_CREATED = "admin:user:created"
    USER_UPDATED = "admin:user:updated"
    USER_DISABLED = "admin:user:disabled"
    USER_ENABLED = "admin:user:enabled"
    DEPARTMENT_CREATED = "admin:department:created"
    DEPARTMENT_UPDATED = "admin:department:updated"
    SETUP_COMPLETED = "system:setup:completed"
    MAIL_VIEWED = "admin:mail:viewed"
