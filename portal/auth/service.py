"""Staff accounts: login steps, MFA enrolment, one-time links, user and department administration.

Functions take the session, the actor and `now` explicitly; they flush but never commit.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import NoReturn

from flask import current_app
from sqlalchemy import case, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from portal import tokens
from portal.audit.actions import AuditAction
from portal.audit.service import ANONYMOUS, SYSTEM, Actor, RequestInfo, record
from portal.auth import passwords, totp
from portal.auth.models import AccountToken, Department, RecoveryCode, Role, StaffUser
from portal.db import run_transaction
from portal.errors import DomainError, LinkExpired, NotFound
from portal.mail.service import enqueue
from portal.text import CONTROL_CHARACTERS_MESSAGE, has_control_characters, too_long_message
from portal.urls import external_url

RECOVERY_CODE_COUNT = 10
MIN_PASSWORD_LENGTH = 12


class LoginFailed(DomainError):
    pass


class AccountLocked(DomainError):
    status_code = 429


class CodeRejected(DomainError):
    pass


# --- login -------------------------------------------------------------------------------------


def check_password(session: Session, email: str, password: str, *, now: datetime, request: RequestInfo) -> StaffUser:
    """First login step. Raises LoginFailed (same message for unknown e-mail and wrong password)
    or AccountLocked."""
    user = session.scalar(select(StaffUser).where(func.lower(StaffUser.email) == email.strip().lower()))
    if user is None:
        passwords.verify_secret(None, password)  # as long as a real check: unknown addresses do not show
        record(session, actor=Actor("anonymous", email[:254]), action=AuditAction.LOGIN_FAILED,
               ip=request.ip, user_agent=request.user_agent, now=now, step="password", reason="unknown")
        raise LoginFailed("メールアドレスまたはパスワードが正しくありません。")
    attempt = _claim_attempt(user, now)
    if not passwords.verify_secret(user.password_hash, password):
        _failed(session, user, attempt, now, request, step="password",
                message="メールアドレスまたはパスワードが正しくありません。")
    _release_attempt(session, user, attempt)
    if not user.is_active:
        raise LoginFailed("このアカウントは無効になっています。管理者にお問い合わせください。")
    return user


def check_second_factor(session: Session, user: StaffUser, code: str, *, now: datetime, request: RequestInfo) -> str:
    """Second login step: a TOTP code or an unused recovery code. Returns "totp" or "recovery".

    Each code is consumed by a conditional UPDATE, so of parallel requests with one code exactly one
    gets in. Raises CodeRejected (wrong, replayed or used-up code) or AccountLocked.
    """
    attempt = _claim_attempt(user, now)
    code = code.strip()
    if not user.totp_secret_sealed:
        _release_attempt(session, user, attempt)
        raise CodeRejected("確認コードの登録が完了していません。")
    counter = totp.matching_counter(totp.unseal_secret(user.totp_secret_sealed), code, now)
    if counter is not None:
        if not _consume_totp_step(session, user, counter):
            _failed(session, user, attempt, now, request, step="totp-replay",
                    message="この確認コードは使用済みです。次のコードが表示されるまでお待ちください。")
        _logged_in(session, user, now, request, method="totp")
        return "totp"
    normalized = code.lower().replace(" ", "")
    if len(normalized) == 11 and normalized[5] == "-":
        for recovery in user.recovery_codes:
            if passwords.verify_secret(recovery.code_hash, normalized):
                if not _consume_recovery_code(session, recovery, now):
                    _failed(session, user, attempt, now, request, step="recovery-reused",
                            message="この回復コードは使用済みです。別の回復コードを入力してください。")
                record(session, actor=Actor.staff(user), action=AuditAction.MFA_RECOVERY_USED, subject=user,
                       ip=request.ip, user_agent=request.user_agent, now=now)
                _logged_in(session, user, now, request, method="recovery-code")
                return "recovery"
    _failed(session, user, attempt, now, request, step="totp", message="確認コードが正しくありません。")


def _consume_totp_step(session: Session, user: StaffUser, counter: int) -> bool:
    """Record `counter` as the last used time step unless it (or a later one) was used already."""
    result = session.execute(
        update(StaffUser)
        .where(StaffUser.id == user.id,
               or_(StaffUser.totp_last_counter.is_(None), StaffUser.totp_last_counter < counter))
        .values(totp_last_counter=counter)
        .execution_options(synchronize_session=False)
    )
    session.expire(user, ["totp_last_counter"])
    return bool(result.rowcount)  # type: ignore[attr-defined]


def _consume_recovery_code(session: Session, recovery: RecoveryCode, now: datetime) -> bool:
    result = session.execute(
        update(RecoveryCode)
        .where(RecoveryCode.id == recovery.id, RecoveryCode.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    session.expire(recovery, ["used_at"])
    return bool(result.rowcount)  # type: ignore[attr-defined]


def _lock_message(minutes: int, *, now_locked: bool = False) -> str:
    verb = "ロックしました" if now_locked else "ロックしています"
    return f"ログインに続けて失敗したため、アカウントを一時的に{verb}。{minutes}分後に再度お試しください。"


def _claim_attempt(user: StaffUser, now: datetime) -> int:
    """Count a login attempt before checking it, in a transaction of its own committed at once.

    The attempt that reaches LOGIN_MAX_FAILURES also locks the account (lifted again if it succeeds), so
    parallel guesses are never checked more often than the limit, and the database's write lock is not
    held while a password hash is computed. An expired lock starts the count again. Returns the count;
    raises AccountLocked while the account is locked. Call it before the session writes anything.
    """
    limit = int(current_app.config["LOGIN_MAX_FAILURES"])
    minutes = int(current_app.config["LOGIN_LOCK_MINUTES"])
    count = case((StaffUser.locked_until.is_not(None), 1), else_=StaffUser.failed_attempts + 1)
    claim = (
        update(StaffUser)
        .where(StaffUser.id == user.id, or_(StaffUser.locked_until.is_(None), StaffUser.locked_until <= now))
        .values(failed_attempts=count,
                locked_until=case((count >= limit, now + timedelta(minutes=minutes)), else_=None))
        .returning(StaffUser.failed_attempts)
        .execution_options(synchronize_session=False)
    )

    def work(claims: Session) -> tuple[int | None, datetime | None]:
        attempt = claims.execute(claim).scalar()
        if attempt is not None:
            return attempt, None
        return None, claims.scalar(select(StaffUser.locked_until).where(StaffUser.id == user.id))

    attempt, locked_until = run_transaction(current_app.extensions["portal.session_factory"], work)
    if attempt is None:
        left = max(1, math.ceil((locked_until - now).total_seconds() / 60)) if locked_until else minutes
        raise AccountLocked(_lock_message(left))
    return attempt


def _release_attempt(session: Session, user: StaffUser, attempt: int) -> None:
    """The checked step succeeded: it no longer counts as a failure (nor holds the lock it took)."""
    values: dict[object, object] = {
        StaffUser.failed_attempts: case((StaffUser.failed_attempts > 0, StaffUser.failed_attempts - 1), else_=0)}
    if attempt >= current_app.config["LOGIN_MAX_FAILURES"]:
        values[StaffUser.locked_until] = None
    session.execute(update(StaffUser).where(StaffUser.id == user.id).values(values)
                    .execution_options(synchronize_session=False))
    session.expire(user, ["failed_attempts", "locked_until"])


def _failed(session: Session, user: StaffUser, attempt: int, now: datetime, request: RequestInfo, *, step: str,
            message: str) -> NoReturn:
    """Record a failed check (already counted by _claim_attempt) and raise: LoginFailed or CodeRejected
    with `message`, AccountLocked when this attempt was the last one allowed."""
    record(session, actor=Actor.staff(user), action=AuditAction.LOGIN_FAILED, subject=user,
           ip=request.ip, user_agent=request.user_agent, now=now, step=step, attempts=attempt)
    if attempt >= current_app.config["LOGIN_MAX_FAILURES"]:
        minutes = int(current_app.config["LOGIN_LOCK_MINUTES"])
        record(session, actor=SYSTEM, action=AuditAction.LOGIN_LOCKED, subject=user,
               ip=request.ip, user_agent=request.user_agent, now=now, minutes=minutes)
        session.flush()
        raise AccountLocked(_lock_message(minutes, now_locked=True))
    session.flush()
    raise (LoginFailed if step == "password" else CodeRejected)(message)


def _logged_in(session: Session, user: StaffUser, now: datetime, request: RequestInfo, method: str) -> None:
    session.execute(update(StaffUser).where(StaffUser.id == user.id)
                    .values(failed_attempts=0, locked_until=None, last_login_at=now)
                    .execution_options(synchronize_session=False))
    session.expire(user, ["failed_attempts", "locked_until", "last_login_at"])
    record(session, actor=Actor.staff(user), action=AuditAction.LOGIN_SUCCEEDED, subject=user,
           ip=request.ip, user_agent=request.user_agent, now=now, method=method)
    session.flush()


def logout(session: Session, user: StaffUser, *, now: datetime, request: RequestInfo) -> None:
    """End every session of the user (this browser's and any copy of its cookie)."""
    end_sessions(session, user)
    record(session, actor=Actor.staff(user), action=AuditAction.LOGOUT, subject=user,
           ip=request.ip, user_agent=request.user_agent, now=now)
    session.flush()


def end_sessions(session: Session, user: StaffUser) -> None:
    """Raise the user's session version: every session started before no longer counts as logged in."""
    session.execute(update(StaffUser).where(StaffUser.id == user.id)
                    .values(session_version=StaffUser.session_version + 1)
                    .execution_options(synchronize_session=False))
    session.expire(user, ["session_version"])


# --- MFA enrolment ------------------------------------------------------------------------------


def pending_totp_secret(session: Session, user: StaffUser) -> str:
    """The secret shown while the user enrols an authenticator app: made once, kept sealed on the user's
    row (never in the session cookie) until confirm_totp_enrolment() makes it the user's TOTP secret."""
    if user.totp_pending_sealed is None:
        session.execute(update(StaffUser)
                        .where(StaffUser.id == user.id, StaffUser.totp_pending_sealed.is_(None))
                        .values(totp_pending_sealed=totp.seal_secret(totp.new_secret()))
                        .execution_options(synchronize_session=False))
        session.expire(user, ["totp_pending_sealed"])  # two tabs at once: both show the one that was stored
    assert user.totp_pending_sealed is not None
    return totp.unseal_secret(user.totp_pending_sealed)


def confirm_totp_enrolment(
    session: Session, user: StaffUser, code: str, *, now: datetime, request: RequestInfo
) -> list[str]:
    """Make the pending secret the user's TOTP secret once the person proved they can read it; return
    new recovery codes (shown once, stored hashed). Raises CodeRejected when the code does not match
    or the enrolment was completed (or reset) meanwhile."""
    sealed = user.totp_pending_sealed
    counter = totp.matching_counter(totp.unseal_secret(sealed), code, now) if sealed else None
    if sealed is None or counter is None:
        raise CodeRejected("確認コードが正しくありません。認証アプリに表示されている6桁の数字を入力してください。")
    result = session.execute(
        update(StaffUser)
        .where(StaffUser.id == user.id, StaffUser.mfa_enrolled_at.is_(None), StaffUser.totp_pending_sealed == sealed)
        .values(totp_secret_sealed=sealed, totp_pending_sealed=None, totp_last_counter=counter, mfa_enrolled_at=now)
        .execution_options(synchronize_session=False)
    )
    session.expire(user, ["totp_secret_sealed", "totp_pending_sealed", "totp_last_counter", "mfa_enrolled_at"])
    if not result.rowcount:  # type: ignore[attr-defined]
        raise CodeRejected("認証アプリの登録はすでに完了しているか、やり直されました。もう一度ログインしてください。")
    codes = _replace_recovery_codes(user)
    record(session, actor=Actor.staff(user), action=AuditAction.MFA_ENROLLED, subject=user,
           ip=request.ip, user_agent=request.user_agent, now=now)
    session.flush()
    return codes


def _replace_recovery_codes(user: StaffUser) -> list[str]:
    codes = [f"{secrets.token_hex(3)[:5]}-{secrets.token_hex(3)[:5]}" for _ in range(RECOVERY_CODE_COUNT)]
    user.recovery_codes.clear()
    user.recovery_codes.extend(RecoveryCode(code_hash=passwords.hash_secret(code)) for code in codes)
    return codes


def set_password(session: Session, user: StaffUser, password: str, confirm: str, *, now: datetime) -> None:
    """Raises DomainError when the password is too short or the two entries differ."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise DomainError(f"パスワードは{MIN_PASSWORD_LENGTH}文字以上にしてください。")
    if password != confirm:
        raise DomainError("確認用パスワードが一致しません。")
    user.password_hash = passwords.hash_secret(password)
    end_sessions(session, user)
    record(session, actor=Actor.staff(user), action=AuditAction.PASSWORD_SET, subject=user, now=now)
    session.flush()


# --- one-time links -----------------------------------------------------------------------------


def issue_account_token(session: Session, purpose: str, user: StaffUser | None, *, now: datetime) -> str:
    """Return the full URL of a new one-time link; only its hash is stored."""
    hours = current_app.config["SETUP_TOKEN_HOURS" if purpose == "setup" else "ENROLMENT_TOKEN_HOURS"]
    token, token_hash = tokens.new_token()
    session.add(AccountToken(token_hash=token_hash, purpose=purpose, user_id=user.id if user else None,
                             created_at=now, expires_at=now + timedelta(hours=hours)))
    session.flush()
    return external_url("auth.setup" if purpose == "setup" else "auth.enrol", token=token)


def open_account_token(session: Session, token: str, purpose: str, *, now: datetime) -> AccountToken:
    """Raises NotFound for an unknown or used link and LinkExpired after its expiry."""
    row = session.scalar(select(AccountToken).where(AccountToken.token_hash == tokens.hash_token(token),
                                                    AccountToken.purpose == purpose))
    if row is None or row.used_at is not None:
        raise NotFound("このリンクは無効か、すでに使用されています。管理者に新しいリンクの発行を依頼してください。")
    if row.expires_at <= now:
        raise LinkExpired("このリンクの有効期限が切れています。管理者に新しいリンクの発行を依頼してください。")
    return row


def admin_exists(session: Session) -> bool:
    count = session.scalar(select(func.count()).select_from(StaffUser).where(StaffUser.role == Role.ADMIN))
    return bool(count)


def first_run_setup_url(session: Session, *, now: datetime) -> str | None:
    """A fresh one-time setup link while no admin exists, else None."""
    if admin_exists(session):
        return None
    return issue_account_token(session, "setup", None, now=now)


def complete_setup(session: Session, token_row: AccountToken, *, email: str, name: str, department_name: str,
                   password: str, confirm: str, now: datetime, request: RequestInfo) -> StaffUser:
    """Create the first admin from the setup link. Raises DomainError if an admin already exists."""
    if admin_exists(session):
        raise DomainError("管理者はすでに登録されています。ログインしてください。")
    department = find_or_create_department(session, department_name, now=now)
    user = _new_user(session, email=email, name=name, role=Role.ADMIN, department=department, title="", now=now)
    set_password(session, user, password, confirm, now=now)
    token_row.used_at = now
    record(session, actor=Actor.staff(user), action=AuditAction.SETUP_COMPLETED, subject=user,
           ip=request.ip, user_agent=request.user_agent, now=now)
    session.flush()
    return user


# --- administration -----------------------------------------------------------------------------


def find_or_create_department(session: Session, name_or_code: str, *, now: datetime) -> Department:
    name_or_code = name_or_code.strip()
    if not name_or_code:
        raise DomainError("所属を入力してください。")
    found = session.scalar(
        select(Department).where((Department.code == name_or_code) | (Department.name == name_or_code))
    )
    if found:
        return found
    count = session.scalar(select(func.count()).select_from(Department)) or 0
    department = Department(code=f"D{count + 1:03d}", name=name_or_code, created_at=now)
    session.add(department)
    session.flush()
    record(session, actor=SYSTEM, action=AuditAction.DEPARTMENT_CREATED, subject=department, now=now,
           name=department.name)
    return department


@dataclass(frozen=True)
class DepartmentInput:
    code: str
    name: str
    kind: str = "本庁"
    go_live_date: date | None = None
    contact_phone: str = ""
    contact_email: str = ""
    is_active: bool = True


def save_department(session: Session, department: Department | None, data: DepartmentInput, *,
                    actor: StaffUser, now: datetime) -> Department:
    """Create or change a department. Raises DomainError on a duplicate code."""
    clash = session.scalar(select(Department).where(Department.code == data.code))
    if clash is not None and clash is not department:
        raise DomainError(f"所属コード「{data.code}」はすでに使われています。")
    action = AuditAction.DEPARTMENT_UPDATED if department else AuditAction.DEPARTMENT_CREATED
    before = _department_values(department) if department else {}
    try:
        with session.begin_nested():  # two admins adding the same code at once: the second is told, not a 500
            if department is None:
                department = Department(created_at=now)
                session.add(department)
            for key in ("code", "name", "kind", "is_active", "go_live_date", "contact_phone", "contact_email"):
                setattr(department, key, getattr(data, key))
    except IntegrityError:
        raise DomainError(f"所属コード「{data.code}」はすでに使われています。") from None
    after = _department_values(department)
    record(session, actor=Actor.staff(actor), action=action, subject=department, now=now,
           changes={key: [before.get(key), value] for key, value in after.items() if before.get(key) != value})
    return department


def _department_values(source: Department | DepartmentInput) -> dict[str, object]:
    return {
        "code": source.code, "name": source.name, "kind": source.kind, "is_active": source.is_active,
        "go_live_date": source.go_live_date.isoformat() if source.go_live_date else None,
        "contact_phone": source.contact_phone, "contact_email": source.contact_email,
    }


def find_department(session: Session, name_or_code: str) -> Department:
    """An existing, active department by code or name. Raises DomainError naming the ones that exist."""
    department = session.scalar(
        select(Department).where((Department.code == name_or_code) | (Department.name == name_or_code)))
    if department is None or not department.is_active:
        known = ", ".join(session.scalars(select(Department.code).where(Department.is_active).order_by(
            Department.code)))
        raise DomainError(f"所属「{name_or_code}」はありません（登録済み: {known or 'なし'}）。"
                          "先に「所属」の画面で登録してください。")
    return department


def _check_person_text(*, name: str, title: str) -> None:
    """The same rules as the forms, for every way an account is made or changed (the CLI too)."""
    if not name.strip():
        raise DomainError("氏名を入力してください。")
    for label, value, limit in (("氏名", name, 100), ("役職", title, 100)):
        if has_control_characters(value):
            raise DomainError(f"{label}に{CONTROL_CHARACTERS_MESSAGE}")
        if len(value.strip()) > limit:
            raise DomainError(too_long_message(label, limit))


def _new_user(session: Session, *, email: str, name: str, role: Role, department: Department, title: str,
              now: datetime) -> StaffUser:
    from email_validator import EmailNotValidError, validate_email

    try:
        email = validate_email(email.strip(), check_deliverability=False).normalized
    except EmailNotValidError:
        raise DomainError("メールアドレスの形式が正しくありません。") from None
    if session.scalar(select(StaffUser).where(func.lower(StaffUser.email) == email.lower())):
        raise DomainError(f"{email} はすでに登録されています。")
    _check_person_text(name=name, title=title)
    user = StaffUser(email=email, name=name.strip(), role=role, department=department, title=title.strip(),
                     created_at=now)
    session.add(user)
    session.flush()
    return user


def create_user(session: Session, *, email: str, name: str, role: Role, department: Department, title: str,
                actor: StaffUser | None, now: datetime) -> tuple[StaffUser, str]:
    """Create an account without password or MFA and return it with its one-time enrolment link."""
    user = _new_user(session, email=email, name=name, role=role, department=department, title=title, now=now)
    record(session, actor=Actor.staff(actor) if actor else SYSTEM, action=AuditAction.USER_CREATED,
           subject=user, now=now, email=user.email, role=str(role), department=department.name)
    link = issue_account_token(session, "enrol", user, now=now)
    _mail_enrolment_link(session, user, link, now)
    return user, link


def _mail_enrolment_link(session: Session, user: StaffUser, link: str, now: datetime, *, reset: bool = False) -> None:
    expires_at = now + timedelta(hours=current_app.config["ENROLMENT_TOKEN_HOURS"])
    enqueue(session, "staff_enrolment", user.email,
            {"name": user.name, "link": link, "expires_at": expires_at, "reset": reset}, to_name=user.name, now=now)


def update_user(session: Session, user: StaffUser, *, name: str, title: str, role: Role, department: Department,
                actor: StaffUser, now: datetime) -> None:
    """Raises DomainError when an admin would remove the last admin."""
    if user.role == Role.ADMIN and role != Role.ADMIN and _active_admins(session) <= 1:
        raise DomainError("最後の管理者の役割は変更できません。")
    _check_person_text(name=name, title=title)
    before = {"name": user.name, "title": user.title, "role": str(user.role), "department": user.department.name}
    user.name, user.title, user.role, user.department = name, title, role, department
    record(session, actor=Actor.staff(actor), action=AuditAction.USER_UPDATED, subject=user, now=now,
           before=before, after={"name": name, "title": title, "role": str(role), "department": department.name})
    session.flush()


def set_active(session: Session, user: StaffUser, active: bool, *, actor: StaffUser, now: datetime) -> None:
    """Raises DomainError when disabling oneself or the last admin."""
    if not active and user.id == actor.id:
        raise DomainError("自分自身のアカウントは無効にできません。")
    if not active and user.role == Role.ADMIN and _active_admins(session) <= 1:
        raise DomainError("最後の管理者は無効にできません。")
    user.is_active = active
    if not active:
        end_sessions(session, user)
    record(session, actor=Actor.staff(actor), now=now, subject=user,
           action=AuditAction.USER_ENABLED if active else AuditAction.USER_DISABLED)
    session.flush()


def unlock(session: Session, user: StaffUser, *, actor: StaffUser, now: datetime) -> bool:
    """Lift a lock after failed logins before it expires (the user phoned the help desk) and start the
    count again. False when the account was not locked: nothing is changed or logged then."""
    result = session.execute(
        update(StaffUser)
        .where(StaffUser.id == user.id, StaffUser.locked_until.is_not(None), StaffUser.locked_until > now)
        .values(failed_attempts=0, locked_until=None)
        .execution_options(synchronize_session=False)
    )
    session.expire(user, ["failed_attempts", "locked_until"])
    if not result.rowcount:  # type: ignore[attr-defined]
        return False
    record(session, actor=Actor.staff(actor), action=AuditAction.USER_UNLOCKED, subject=user, now=now)
    session.flush()
    return True


def reset_mfa(session: Session, user: StaffUser, *, actor: StaffUser, now: datetime) -> str:
    """Start the user's enrolment again, as for a new account: forget the password, the TOTP and the
    recovery codes, end every session and earlier enrolment link, and mail a new one-time enrolment link
    (returned, for the admin to see once). Whoever knew the old password can no longer use it."""
    user.password_hash = None
    user.totp_secret_sealed = None
    user.totp_pending_sealed = None
    user.totp_last_counter = None
    user.mfa_enrolled_at = None
    user.recovery_codes.clear()
    session.flush()
    end_sessions(session, user)
    session.execute(update(AccountToken)
                    .where(AccountToken.user_id == user.id, AccountToken.used_at.is_(None))
                    .values(used_at=now)
                    .execution_options(synchronize_session=False))
    record(session, actor=Actor.staff(actor), action=AuditAction.MFA_RESET, subject=user, now=now,
           password_cleared=True)
    session.flush()
    link = issue_account_token(session, "enrol", user, now=now)
    _mail_enrolment_link(session, user, link, now, reset=True)
    return link


def _active_admins(session: Session) -> int:
    query = select(func.count()).select_from(StaffUser).where(StaffUser.role == Role.ADMIN, StaffUser.is_active)
    return session.scalar(query) or 0


def get_user(session: Session, user_id: int) -> StaffUser:
    user = session.get(StaffUser, user_id)
    if user is None:
        raise NotFound("ユーザーが見つかりません。")
    return user


__all__ = ["ANONYMOUS", "AccountLocked", "CodeRejected", "LoginFailed", "RequestInfo"]
