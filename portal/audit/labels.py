"""The operation log in Japanese: one sentence per action, so nobody reads raw codes.

Each action has a kind (its name in the viewer's filter), a group (the filter's headings) and a
sentence with {actor} and {object}: 「髙橋 一郎 が 契約 DORO-R8-0011 の文書をダウンロードしました」.
The viewer (/audit), its CSV and a contract's 「履歴」 all read these.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from portal.audit.actions import AuditAction as A


@dataclass(frozen=True)
class Label:
    group: str
    kind: str
    sentence: str


GROUPS = {
    "contract-read": "契約の閲覧・ダウンロード",
    "contract": "契約の手続き",
    "signer": "署名者の操作",
    "usage-request": "利用申出",
    "search": "検索・出力",
    "login": "ログイン・認証",
    "admin": "ユーザー・所属・設定",
    "api": "API・Webhook",
    "preservation": "保存・検証",
    "audit": "操作ログ",
}

_L = Label
LABELS: dict[A, Label] = {
    # Login and accounts
    A.LOGIN_SUCCEEDED: _L("login", "ログイン", "{actor} がログインしました"),
    A.LOGIN_FAILED: _L("login", "ログインの失敗", "{actor} のログインが失敗しました"),
    A.LOGIN_LOCKED: _L("login", "アカウントのロック", "{object} のアカウントがロックされました"),
    A.LOGOUT: _L("login", "ログアウト", "{actor} がログアウトしました"),
    A.MFA_ENROLLED: _L("login", "二要素認証の登録", "{actor} が認証アプリを登録しました"),
    A.MFA_FAILED: _L("login", "二要素認証の失敗", "{actor} の確認コードが誤っていました"),
    A.MFA_RECOVERY_USED: _L("login", "回復コードの使用", "{actor} が回復コードでログインしました"),
    A.MFA_RESET: _L("admin", "二要素認証のリセット", "{actor} が {object} の二要素認証をリセットしました"),
    A.SSO_SUCCEEDED: _L("login", "シングルサインオン", "{actor} が組織のアカウントでログインしました"),
    A.SSO_FAILED: _L("login", "シングルサインオンの失敗", "{actor} の組織のアカウントでのログインが失敗しました"),
    A.PASSWORD_SET: _L("login", "パスワードの設定", "{actor} がパスワードを設定しました"),
    A.SETUP_COMPLETED: _L("admin", "初期設定", "{actor} が最初の管理者として初期設定を完了しました"),
    A.STAFF_NETWORK_REFUSED: _L("login", "接続元の拒否",
                                "{actor} の許可されていない接続元からのアクセスを拒否しました"),
    # Administration
    A.USER_CREATED: _L("admin", "ユーザーの作成", "{actor} が {object} のアカウントを作成しました"),
    A.USER_UPDATED: _L("admin", "ユーザーの変更", "{actor} が {object} の氏名・役割・所属を変更しました"),
    A.USER_DISABLED: _L("admin", "ユーザーの停止", "{actor} が {object} のアカウントを停止しました"),
    A.USER_ENABLED: _L("admin", "ユーザーの再開", "{actor} が {object} のアカウントを再開しました"),
    A.USER_UNLOCKED: _L("admin", "ロックの解除", "{actor} が {object} のアカウントのロックを解除しました"),
    A.DEPARTMENT_CREATED: _L("admin", "所属の作成", "{actor} が {object} を作成しました"),
    A.DEPARTMENT_UPDATED: _L("admin", "所属の変更", "{actor} が {object} を変更しました"),
    A.STAFF_NETWORKS_CHANGED: _L("admin", "接続元の制限の変更", "{actor} が職員の接続元の制限を変更しました"),
    A.RETENTION_POLICY_SET: _L("admin", "保存期間の設定", "{actor} が保存期間を設定しました"),
    A.MAIL_VIEWED: _L("admin", "送信メールの閲覧", "{actor} が {object} を閲覧しました"),
    A.MAIL_LIST_VIEWED: _L("admin", "送信メール一覧の閲覧", "{actor} が送信メールの一覧を閲覧しました"),
    A.MAIL_HELD_SENT: _L("admin", "保留中のメールの送信", "{actor} が保留中の {object} の送信を指示しました"),
    A.MAIL_WITHDRAWN: _L("admin", "未送信メールの取りやめ", "リンクが無効になったため {object} の送信を取りやめました"),
    # Contracts: reading
    A.CONTRACT_VIEWED: _L("contract-read", "契約の閲覧", "{actor} が {object} を閲覧しました"),
    A.CONTRACT_HISTORY_VIEWED: _L("contract-read", "訂正履歴の閲覧", "{actor} が {object} の訂正履歴を閲覧しました"),
    A.CONTRACT_PAGE_VIEWED: _L("contract-read", "文書ページの表示", "{actor} が {object} の文書のページを表示しました"),
    A.CONTRACT_DOCUMENT_DOWNLOADED: _L("contract-read", "文書のダウンロード",
                                       "{actor} が {object} の文書をダウンロードしました"),
    A.CONTRACT_CERTIFICATE_DOWNLOADED: _L("contract-read", "合意締結証明書のダウンロード",
                                          "{actor} が {object} の合意締結証明書をダウンロードしました"),
    A.CONTRACT_LINK_OPENED: _L("contract-read", "ダウンロード用リンクの表示",
                               "{actor} が {object} のダウンロード用リンクを開きました"),
    A.CONTRACT_LINK_DOWNLOADED: _L("contract-read", "ダウンロード用リンクからのダウンロード",
                                   "{actor} が {object} の締結済み文書をダウンロード用リンクからダウンロードしました"),
    A.CONTRACT_REVIEWED: _L("contract-read", "署名ページの閲覧", "{actor} が {object} の署名ページを開きました"),
    # Contracts: the procedure
    A.CONTRACT_CREATED: _L("contract", "契約の作成", "{actor} が {object} を作成しました"),
    A.CONTRACT_CONSENT_RECORDED: _L("contract", "相手方の承諾の記録",
                                    "{actor} が {object} について相手方の事前の承諾を記録しました"),
    A.CONTRACT_STAFF_SIGNER_ALLOWED: _L("contract", "職員アドレスの署名者の許可",
                                        "{actor} が {object} で職員のアドレスを取引先の署名者として許可しました"),
    A.CONTRACT_SIGNER_OVERRIDDEN: _L("contract", "登録外の署名者の指定",
                                     "{actor} が {object} で登録された契約締結権限者と異なる署名者を指定しました"),
    A.CONTRACT_UNREGISTERED_COUNTERPARTY_ALLOWED: _L(
        "contract", "申出書のない取引先の許可", "{actor} が {object} を受付済みの利用申出書のない取引先と作成しました"),
    A.CONTRACT_DOCUMENT_ADDED: _L("contract", "文書の追加", "{actor} が {object} に文書を追加しました"),
    A.CONTRACT_DOCUMENT_REMOVED: _L("contract", "文書の削除", "{actor} が {object} から文書を削除しました"),
    A.CONTRACT_APPROVAL_REQUESTED: _L("contract", "承認の依頼", "{actor} が {object} の承認（決裁）を依頼しました"),
    A.CONTRACT_APPROVED: _L("contract", "決裁の確認", "{actor} が {object} の決裁を確認しました"),
    A.CONTRACT_APPROVAL_VOIDED: _L("contract", "決裁の取消（文書・内容の変更）",
                                   "{actor} が文書または内容の変更により {object} の決裁を無効にしました"),
    A.CONTRACT_EDITED: _L("contract", "契約内容の編集", "{actor} が {object} の内容を編集しました"),
    A.CONTRACT_DUPLICATED: _L("contract", "契約の複製", "{actor} が {object} を複製して新しい契約を作成しました"),
    A.CONTRACT_SENT: _L("contract", "署名依頼の送信", "{actor} が {object} の署名依頼を送信しました"),
    A.CONTRACT_SIGNATURE_REQUESTED: _L("contract", "署名者への依頼",
                                       "{actor} が {object} の署名を次の署名者に依頼しました"),
    A.CONTRACT_REMINDED: _L("contract", "督促", "{actor} が {object} の署名を督促しました"),
    A.CONTRACT_SIGNATURE_REQUEST_RESENT: _L("contract", "署名依頼の再送",
                                            "{actor} が {object} の署名依頼を新しいリンクで再送しました"),
    A.CONTRACT_SIGNING_LINK_UNLOCKED: _L("contract", "署名用リンクのロック解除",
                                         "{actor} が {object} の署名用リンクのロックを解除しました"),
    A.CONTRACT_ACCESS_CODE_CHANGED: _L("contract", "アクセスコードの変更",
                                       "{actor} が {object} のアクセスコードを変更しました"),
    A.CONTRACT_DOWNLOAD_LINK_REISSUED: _L("contract", "ダウンロード用リンクの再発行",
                                          "{actor} が {object} のダウンロード用リンクを再発行しました"),
    A.CONTRACT_COMPLETED: _L("contract", "締結", "{actor} が {object} を締結済みにしました"),
    A.CONTRACT_COMPLETION_FAILED: _L("contract", "締結処理の失敗", "{actor} の {object} の締結処理が失敗しました"),
    A.CONTRACT_SWITCHED_TO_PAPER: _L("contract", "紙契約への移行", "{actor} が {object} を紙契約へ移行しました"),
    A.CONTRACT_CANCELLED: _L("contract", "契約の取消", "{actor} が {object} を取り消しました"),
    A.METADATA_CORRECTED: _L("contract", "登録内容の訂正", "{actor} が {object} の登録内容を訂正しました"),
    A.CONTRACT_DELETED_AFTER_RETENTION: _L("preservation", "保存期間後の削除",
                                           "{actor} が保存期間の過ぎた {object} を削除しました"),
    # Signers
    A.CONTRACT_SIGNED: _L("signer", "署名", "{actor} が {object} に署名しました"),
    A.CONTRACT_SIGNING_FAILED: _L("signer", "署名の失敗", "{actor} の {object} への署名が失敗しました"),
    A.CONTRACT_ACCESS_CODE_FAILED: _L("signer", "アクセスコードの誤り",
                                      "{actor} が {object} のアクセスコードを誤って入力しました"),
    A.CONTRACT_ACCESS_CODE_LOCKED: _L("signer", "署名用リンクのロック",
                                      "{actor} のアクセスコードの誤りが上限に達し、"
                                      "{object} の署名用リンクがロックされました"),
    A.CONTRACT_ACCESS_CODE_ACCEPTED: _L("signer", "アクセスコードの確認",
                                        "{actor} が {object} のアクセスコードを入力し、文書を開きました"),
    A.CONTRACT_DECLINED: _L("signer", "差し戻し", "{actor} が {object} を差し戻しました"),
    # Usage requests (電子契約利用申出書)
    A.USAGE_REQUEST_SUBMITTED: _L("usage-request", "利用申出の受付", "{actor} が {object} を提出しました"),
    A.USAGE_REQUEST_HONEYPOT: _L("usage-request", "自動送信の疑い",
                                 "{actor} の利用申出を自動送信の疑いで受け付けませんでした"),
    A.USAGE_REQUEST_CONFIRMED: _L("usage-request", "利用申出の確認", "{actor} が {object} の内容を確認しました"),
    A.USAGE_REQUEST_ENTERED: _L("usage-request", "利用申出の代理入力", "{actor} が {object} を代理で入力しました"),
    A.USAGE_REQUEST_VIEWED: _L("usage-request", "利用申出の閲覧", "{actor} が {object} を閲覧しました"),
    A.USAGE_REQUEST_ACCEPTED: _L("usage-request", "利用申出の受理", "{actor} が {object} を受理しました"),
    A.USAGE_REQUEST_RETURNED: _L("usage-request", "利用申出の返戻", "{actor} が {object} を返戻しました"),
    A.USAGE_REQUEST_PDF_DOWNLOADED: _L("usage-request", "利用申出書のダウンロード",
                                       "{actor} が {object} の申出書（PDF）をダウンロードしました"),
    A.USAGE_REQUEST_AUTHORITY_REGISTERED: _L("usage-request", "署名権限者の登録",
                                             "{actor} が {object} の署名権限者を登録しました"),
    A.USAGE_REQUEST_CORRECTION_OPENED: _L("usage-request", "差戻し後の修正画面の表示",
                                          "{actor} が差し戻された {object} の修正画面を開きました"),
    A.USAGE_REQUEST_CORRECTED: _L("usage-request", "利用申出の再提出",
                                  "{actor} が差し戻された {object} を修正して再提出しました"),
    A.COUNTERPARTY_VIEWED: _L("usage-request", "取引先の閲覧", "{actor} が {object} を閲覧しました"),
    A.COUNTERPARTY_DECLINED_E_CONTRACT: _L("usage-request", "電子契約を希望しないの記録",
                                           "{actor} が {object} について「電子契約を希望しない」を記録しました"),
    A.COUNTERPARTY_DECLINE_WITHDRAWN: _L("usage-request", "電子契約を希望しないの取消",
                                         "{actor} が {object} の「電子契約を希望しない」を取り消しました"),
    # Search and exports
    A.SEARCH_PERFORMED: _L("search", "契約の検索", "{actor} が契約を検索しました"),
    A.SEARCH_EXPORTED: _L("search", "検索結果の出力", "{actor} が契約の検索結果を出力しました"),
    # API and webhooks
    A.API_TOKEN_CREATED: _L("api", "API トークンの発行", "{actor} が {object} の API トークンを発行しました"),
    A.API_TOKEN_REVOKED: _L("api", "API トークンの失効", "{actor} が {object} の API トークンを失効させました"),
    A.API_TOKEN_USED: _L("api", "API トークンの使用", "{actor} が API トークンで API を呼び出しました"),
    A.API_TOKEN_REFUSED: _L("api", "API トークンの拒否", "{actor} の無効な API トークンによる呼び出しを拒否しました"),
    A.API_CONTRACT_VIEWED: _L("api", "API での契約の閲覧", "{actor} が API で {object} を閲覧しました"),
    A.API_DOCUMENT_DOWNLOADED: _L("api", "API での文書のダウンロード",
                                  "{actor} が API で {object} の文書をダウンロードしました"),
    A.API_SEARCHED: _L("api", "API での検索", "{actor} が API で契約を検索しました"),
    A.WEBHOOK_ENDPOINT_CREATED: _L("api", "Webhook の登録", "{actor} が {object} を登録しました"),
    A.WEBHOOK_ENDPOINT_UPDATED: _L("api", "Webhook の変更", "{actor} が {object} を変更しました"),
    A.WEBHOOK_ENDPOINT_DELETED: _L("api", "Webhook の削除", "{actor} が {object} を削除しました"),
    A.WEBHOOK_DELIVERY_RETRIED: _L("api", "Webhook の再送", "{actor} が {object} への送信を再試行しました"),
    # Preservation (電帳法)
    A.VERIFICATION_STARTED: _L("preservation", "一括検証の開始", "{actor} が {object} を開始しました"),
    A.VERIFICATION_FINISHED: _L("preservation", "一括検証の終了", "{actor} が {object} を終えました"),
    A.VERIFICATION_REPORT_DOWNLOADED: _L("preservation", "検証結果のダウンロード",
                                         "{actor} が {object} の結果をダウンロードしました"),
    A.DOCUMENT_TIMESTAMP_RENEWED: _L("preservation", "アーカイブタイムスタンプの更新",
                                     "{actor} が {object} の文書に新しい文書タイムスタンプを追加しました"),
    A.PKI_CERTIFICATE_RENEWED: _L("admin", "内蔵 PKI の証明書の更新", "{actor} が内蔵 PKI の証明書を更新しました"),
    A.PKI_CERTIFICATE_REVOKED: _L("admin", "内蔵 PKI の証明書の失効", "{actor} が内蔵 PKI の証明書を失効させました"),
    A.STORAGE_INTEGRITY_FAILED: _L("preservation", "保存データの不一致（提供を中止）",
                                   "{actor} が開こうとした保存データが記録と一致しないため、提供を中止しました"),
    A.STORAGE_GC_DELETED: _L("preservation", "参照されない保存データの削除",
                             "{actor} がどの記録からも参照されない保存データを削除しました"),
    # The log itself
    A.AUDIT_VIEWED: _L("audit", "操作ログの閲覧", "{actor} が操作ログを閲覧しました"),
    A.AUDIT_EXPORTED: _L("audit", "操作ログの出力", "{actor} が操作ログを CSV で出力しました"),
    A.AUDIT_CHECKPOINT_CREATED: _L("audit", "操作ログのチェックポイント",
                                   "{actor} が操作ログを検証し、タイムスタンプ付きのチェックポイントを作成しました"),
    A.AUDIT_INTEGRITY_VIEWED: _L("audit", "操作ログの検証結果の閲覧", "{actor} が操作ログの検証結果を閲覧しました"),
    # Backups
    A.BACKUP_CREATED: _L("preservation", "バックアップの作成", "{actor} がバックアップ {object} を作成しました"),
    A.BACKUP_FAILED: _L("preservation", "バックアップの失敗", "{actor} のバックアップが失敗しました"),
    A.BACKUP_VERIFIED: _L("preservation", "バックアップの検証", "{actor} がバックアップ {object} を検証しました"),
    A.BACKUP_PRUNED: _L("preservation", "古いバックアップの削除", "{actor} が世代から外れたバックアップを削除しました"),
    A.BACKUP_RESTORED: _L("preservation", "バックアップからの復元", "{actor} がバックアップ {object} から復元しました"),
}

# A code written by another version of the portal still reads as a sentence, never as the code.
UNKNOWN = Label("", "その他の操作", "{actor} が操作を行いました（{object}）")

# Details worth showing beside the sentence, with their Japanese names, in this order.
DETAIL_LABELS = {
    "filename": "ファイル",
    "revision": "版",
    "page": "ページ",
    "reason": "理由",
    "signer": "署名者",
    "registered_signer": "登録された契約締結権限者",
    "previous_reason": "元の理由",
    "reference": "決裁番号",
    "step": "段階",
    "attempts": "失敗回数",
    "minutes": "ロック（分）",
    "method": "方式",
    "format": "形式",
    "criteria": "条件",
    "query": "条件",
    "count": "件数",
    "email": "メールアドレス",
    "role": "役割",
    "department": "所属",
    "recipient": "宛先",
    "label": "名称",
    "path": "アクセス先",
    "error": "エラー",
    "number": "契約番号",
    "receipt_number": "受付番号",
    "channel": "経路",
    "name": "名前",
    "size": "サイズ（バイト）",
    "ok": "結果",
    "problems": "問題",
    "deleted": "削除",
    "changes": "変更",
    "copied_from": "複製元",
    "copy": "複製先",
}
STEP_LABELS = {"password": "パスワード", "totp": "確認コード", "recovery": "回復コード"}
ROLE_LABELS = {"admin": "管理者", "staff": "担当者", "approver": "承認者（契約担当者）",
               "auditor": "監査担当（閲覧のみ）"}


# Views that repeat with every visit: in the operation log, but not in a contract's own 履歴.
VIEWS = frozenset({A.CONTRACT_VIEWED, A.CONTRACT_PAGE_VIEWED, A.CONTRACT_HISTORY_VIEWED, A.API_CONTRACT_VIEWED,
                   A.CONTRACT_REVIEWED, A.CONTRACT_LINK_OPENED})


def label_for(action: str) -> Label:
    try:
        return LABELS[A(action)]
    except ValueError:
        return UNKNOWN


def sentence(action: str, *, actor: str, target: str) -> str:
    return label_for(action).sentence.format(actor=actor or "不明な利用者", object=target or "対象")


def kind(action: str) -> str:
    return label_for(action).kind


def details_text(details: dict[str, Any] | None) -> str:
    """The details people read, 「ファイル: 契約書.pdf / 版: 2」; internal keys (hashes, ids) are left out."""
    parts = []
    for key, name in DETAIL_LABELS.items():
        value = (details or {}).get(key)
        if value in (None, "", [], {}):
            continue
        if key == "step":
            value = STEP_LABELS.get(str(value), value)
        elif key == "role":
            value = ROLE_LABELS.get(str(value), value)
        elif key == "changes" and isinstance(value, list):
            value = "、".join(_change_text(c) for c in value if isinstance(c, dict))
        elif isinstance(value, dict):
            value = "、".join(f"{k}={v}" for k, v in value.items() if v not in (None, "", []))
        parts.append(f"{name}: {value}")
    return " / ".join(parts)


def _change_text(change: dict[str, Any]) -> str:
    """「契約金額: 1100000 → 1210000」 (edits and corrections keep the label, or at least the field)."""
    name = change.get("label") or change.get("field")
    return f"{name}: {change.get('old') or '（空欄）'} → {change.get('new') or '（空欄）'}"


def actions_by_group() -> list[tuple[str, str, list[tuple[str, str]]]]:
    """For the filter: [(group key, group name, [(code, kind), …]), …] in the order of GROUPS."""
    return [(key, name, [(str(action), label.kind) for action, label in LABELS.items() if label.group == key])
            for key, name in GROUPS.items()]
