"""Every word the console shows, in Chinese (the default) and English: the one catalogue.

A page asks for a label by its key (`t("inbox")` in a template); a key missing here fails the test that
draws every page in both languages (tests/gateway/console/test_console_labels.py) rather than show a raw key.
"""
from __future__ import annotations

from domain.money import Money, digits

LANGUAGES = ("zh", "en")
DEFAULT = "zh"

CATALOGUE: dict[str, tuple[str, str]] = {
    # the frame
    "title": ("银企直联 资金管理台", "DirectLink treasury console"),
    "skip": ("跳到正文", "Skip to content"),
    "inbox": ("待我审批", "Approvals"),
    "balances": ("余额与头寸", "Balances and cash position"),
    "sign_out": ("退出", "Sign out"),
    "signed_in_as": ("当前用户", "Signed in as"),
    "language": ("English", "中文"),   # the link names the other language
    # sign-in and enrolment
    "sign_in": ("登录", "Sign in"),
    "sign_in_lead": ("插入您的安全密钥(U盾)或使用通行密钥登录。", "Sign in with your security key or passkey."),
    "client": ("客户号", "Client"),
    "operator": ("操作员", "Operator"),
    "sign_in_key": ("使用安全密钥登录", "Sign in with security key"),
    "enrol": ("登记安全密钥", "Register a security key"),
    "enrol_lead": ("为以下操作员登记安全密钥或通行密钥。此链接只能使用一次。",
                   "Register a security key or passkey for this operator. The link works once."),
    "enrol_button": ("登记此密钥", "Register this key"),
    "enrol_done": ("密钥已登记。现在可以登录。", "The key is registered. You can sign in now."),
    "enrol_expires": ("链接有效期至", "The link expires at"),
    "link_invalid": ("此登记链接无效、已使用或已过期。请向银行申请新的链接。",
                     "This enrolment link is unknown, used or expired. Ask the bank for a new one."),
    "signed_out": ("您已退出。", "You are signed out."),
    "session_ended": ("会话已结束,请重新登录。", "Your session has ended. Please sign in again."),
    "working": ("请按提示触摸您的密钥…", "Touch your key when it asks…"),
    # the inbox
    "inbox_lead": ("以下付款等待您审批(不含您自己提交的付款)。", "Payments waiting for your approval (never your own)."),
    "inbox_empty": ("没有等待您审批的付款。", "Nothing is waiting for your approval."),
    "select": ("选择", "Select"),
    "created": ("提交时间", "Submitted"),
    "payee": ("收款人", "Payee"),
    "payee_account": ("收款账号", "Payee account"),
    "amount": ("金额", "Amount"),
    "from_account": ("付款账号", "From account"),
    "maker": ("制单人", "Maker"),
    "purpose": ("用途", "Purpose"),
    "rules": ("规则提示", "Rule hits"),
    "still_needed": ("尚需审批", "Approvals still needed"),
    "digest": ("指令摘要", "Order digest"),
    "approve": ("批准所选", "Approve selected"),
    "reject": ("拒绝所选", "Reject selected"),
    "comment": ("意见", "Comment"),
    "decision_lead": ("批准或拒绝时需用安全密钥签名,签名内容包括所选付款的编号和指令摘要。",
                      "Approving or rejecting asks your key to sign the decision with each selected PaymentId "
                      "and OrderDigest."),
    "none_selected": ("请先选择付款。", "Select at least one payment first."),
    "result_ok": ("已处理", "Done"),
    "result_refused": ("被拒绝,未作任何更改", "Refused, nothing changed"),
    # balances
    "balances_lead": ("您有查询权限的账户。", "The accounts you may query."),
    "account": ("账号", "Account"),
    "account_name": ("户名", "Name"),
    "currency": ("币种", "Currency"),
    "booked": ("账面余额", "Booked"),
    "available": ("可用余额", "Available"),
    "unsettled": ("在途付款", "Unsettled payments"),
    "position_today": ("今日资金头寸(按币种)", "Today's cash position by currency"),
    "chart_title": ("未来30天资金头寸预测", "Cash position, next 30 days"),
    "chart_desc": ("折线为每日日终预计余额,柱形为当日计划付款(已受理及待审批)。",
                   "The line is each day's projected closing balance; the bars are that day's planned "
                   "outflows (accepted and pending payments)."),
    "projected": ("预计余额", "Projected"),
    "outflows": ("计划付款", "Planned outflows"),
    "date": ("日期", "Date"),
    "no_accounts": ("您没有可查询的账户。", "You hold no query grant on any account."),
    # the payments tracker
    "payments": ("付款查询", "Payments"),
    "payment": ("付款", "Payment"),
    "state": ("状态", "State"),
    "any": ("全部", "Any"),
    "date_from": ("提交日期自", "Submitted from"),
    "date_to": ("至", "to"),
    "amount_min": ("金额下限", "Amount from"),
    "amount_max": ("金额上限", "Amount to"),
    "payee_search": ("收款人(中文、拼音或账号)", "Payee (Chinese, pinyin or account)"),
    "reference": ("业务参考号", "Reference"),
    "search": ("查询", "Search"),
    "bad_search": ("查询条件无法识别", "A search field cannot be read"),
    "export_csv": ("导出 CSV", "Export CSV"),
    "export_xlsx": ("导出 Excel (XLSX)", "Export XLSX"),
    "no_payments": ("没有符合条件的付款。", "No payment matches the search."),
    "pages": ("翻页", "Pages"),
    "first_page": ("第一页", "First page"),
    "next_page": ("下一页", "Next page"),
    "back_to_search": ("返回付款查询", "Back to the search"),
    "reason": ("原因", "Reason"),
    "states_history": ("状态变化", "State history"),
    "time": ("时间", "Time"),
    "from_state": ("原状态", "From"),
    "to_state": ("新状态", "To"),
    "actor": ("执行者", "By"),
    "approvals": ("审批记录", "Approvals"),
    "approver": ("审批人", "Approver"),
    "decision": ("决定", "Decision"),
    "none": ("无", "None"),
    "clearing": ("清算回执与退汇", "Clearing answer and returns"),
    "received": ("清算受理时间", "Received by clearing"),
    "outcome": ("清算结果", "Outcome"),
    "returned": ("退汇", "Returned"),
    "audit_records": ("审计记录", "Audit records"),
    "code": ("代码", "Code"),
    "status_report": ("状态报告(PaymentStatusQuery 应答)", "Status report (as PaymentStatusQuery answers)"),
    # statements
    "statements": ("账户对账单", "Statements"),
    "download": ("下载", "Download"),
    "period_from": ("日期自", "From"),
    "statement_cut": ("日期范围内的记录超过5000笔,仅显示前5000笔;请缩小日期范围。",
                      "More than 5,000 entries in this range: the first 5,000 are shown; narrow the range."),
    "opening": ("期初余额", "Opening balance"),
    "closing": ("期末余额", "Closing balance"),
    "debits": ("借方合计", "Debits"),
    "credits": ("贷方合计", "Credits"),
    "debit": ("借方", "Debit"),
    "credit": ("贷方", "Credit"),
    "value_date": ("起息日", "Value date"),
    "counterparty": ("对方户名/账号", "Counterparty"),
    "narrative": ("摘要", "Narrative"),
    "running_balance": ("余额", "Balance"),
    # the audit view
    "audit": ("审计记录查询", "Audit trail"),
    "chain_intact": ("审计链校验通过", "The audit chain verifies"),
    "chain_broken": ("审计链校验失败:记录被修改、删除或重排", "The audit chain does NOT verify: records edited, removed or reordered"),
    "records": ("条记录", "records"),
    "signed_decisions": ("条签名审批", "signed decisions"),
    "chain_head": ("链头", "head"),
    "kind": ("类别", "Kind"),
    "by_key": ("证书/密钥", "Certificate or key"),
    "subject": ("对象", "Subject"),
    "detail": ("详情", "Detail"),
    # delivery health
    "delivery": ("通知投递状态", "Delivery health"),
    "subscriptions": ("通知订阅", "Subscriptions"),
    "no_subscriptions": ("没有您可查看的通知订阅。", "No subscription you may see."),
    "pending": ("待投递", "Pending"),
    "delivered": ("已投递", "Delivered"),
    "dead": ("死信", "Dead"),
    "test_event": ("测试", "Test"),
    "send_test": ("发送测试通知", "Send a test event"),
    "test_sent": ("测试通知已排队,将按正常方式投递", "The test event is queued and is delivered as any other"),
    "all_accounts": ("全部账户", "All accounts"),
    "active": ("启用", "Active"),
    "inactive": ("停用", "Inactive"),
    "failing": ("投递失败(将重试)", "Failing deliveries (retrying)"),
    "attempts": ("尝试次数", "Attempts"),
    "last_error": ("最近错误", "Last error"),
    "next_attempt": ("下次尝试", "Next attempt"),
    "dead_letters": ("死信(不再重试)", "Dead letters (no more attempts)"),
    # reconciliation
    "reconcile": ("对账", "Reconciliation"),
    "recon_unavailable": ("本服务器未启用对账功能。", "Reconciliation is not available on this server."),
    "recon_refused": ("文件未被接受,未保存任何内容", "The files were refused and nothing was saved"),
    "recon_statement": ("银行对账单", "Bank statement"),
    "recon_items": ("ERP未达项", "ERP open items"),
    "recon_upload_note": ("对账单格式:camt.053、MT940、BAI2、金蝶、直联;未达项:CSV、JSON、XLSX。上传总大小上限",
                          "Statements: camt.053, MT940, BAI2, Kingdee, DirectLink; open items: CSV, JSON, XLSX. Upload at most"),
    "recon_columns": ("XLSX列映射(TOML,可选)", "XLSX column mapping (TOML, optional)"),
    "recon_columns_remembered": ("未上传时使用本客户上次的列映射", "Without an upload, this client's last mapping is used"),
    "recon_columns_note": ("XLSX文件须附列映射(与 directlink reconcile --columns 相同)。",
                           "An XLSX file needs a column mapping (the one directlink reconcile --columns takes)."),
    "recon_run": ("开始对账", "Reconcile"),
    "recon_own": ("或:使用本系统的账户对账单", "Or: the gateway's own statement of an account"),
    "recon_past": ("历史对账", "Past runs"),
    "recon_when": ("时间", "When"),
    "recon_files": ("文件", "Files"),
    "recon_matched": ("已匹配", "Matched"),
    "recon_left_lines": ("对账单未匹配", "Statement lines left"),
    "recon_left_items": ("未达项未匹配", "Open items left"),
    "recon_totals": ("合计(不含期初余额)", "Totals (opening balance not counted)"),
    "recon_differences": ("差额合计", "Differences"),
    "recon_matches": ("匹配组", "Matched groups"),
    "recon_rule": ("规则", "Rule"),
    "recon_difference": ("差额", "Difference"),
    "recon_note": ("说明", "Note"),
    "recon_reason": ("理由", "Reason"),
    "recon_confirm": ("确认", "Confirm"),
    "recon_key": ("编号", "Key"),
    "recon_party": ("对方", "Counterparty"),
    "recon_by_hand": ("手工匹配", "Match by hand"),
    "recon_match": ("匹配这两笔", "Match these two"),
    "recon_saved": ("已保存,下次对账时生效。", "Saved; the next run uses it."),
    "recon_again": ("用同样文件重新对账", "Run again with the same files"),
    "direction": ("借贷", "Direction"),
    # errors
    "forbidden": ("请求被拒绝。", "The request was refused."),
    "not_found": ("页面不存在。", "No such page."),
    # receipts (the payment page, the statements page)
    "receipts": ("电子回单", "Receipts"),
    "receipt_no": ("回单编号", "Receipt number"),
    "amount_in_words": ("金额大写", "Amount in words"),
    "booked_at": ("记账时间", "Booked"),
    "return_credit": ("退汇入账", "Return credit"),
    "receipt_xml": ("签名XML", "Signed XML"),
    "receipt_pdf": ("PDF文件", "PDF"),
    "receipt": ("回单", "Receipt"),
    "no_receipts": ("尚未记账,暂无回单。", "Not booked yet: no receipt."),
}


def translator(lang: str):
    """A function key -> label in `lang` (the default language for an unknown one)."""
    index = LANGUAGES.index(lang) if lang in LANGUAGES else 0

    def t(key: str) -> str:
        return CATALOGUE[key][index]
    return t


def grouped(money: Money) -> str:
    """An amount as treasury staff read it: thousands grouped, every minor digit (1,234,567.80)."""
    places = digits(money.currency)
    return f"{money.amount:,.{places}f}"


def chosen(cookie: str | None) -> str:
    return cookie if cookie in LANGUAGES else DEFAULT
