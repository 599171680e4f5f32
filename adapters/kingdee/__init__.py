"""Kingdee (金蝶 苍穹/星瀚, 星空, EAS) adapter: the `bei` 银企互联 payment bill and transaction detail.

Formats
    kingdee.json            reads   a payment batch (bei_bankpaybill) as JSON
    kingdee.xml             reads   the same batch as XML
    kingdee.status.json     writes  payment statuses (fbankpaystate) for PaymentStatusQuery Format
    kingdee.statement.json  writes  a statement page (bei_transdetail 交易明细) for StatementQuery Format

The statement format cannot be called `kingdee.json` as well: registry.adapters() claims every name in
`adapter.formats` (readers, statement writers and status writers together) and refuses a second claim,
even from the same adapter, because a format name must say which map a Document belongs to.

Payment batch fields (lower-case `f` keys, as Kingdee's bei objects name them; docs/kingdee.md)

    key              Kingdee meaning             domain / protocol            rule
    formid           单据标识                      -                            "bei_bankpaybill" (XML: the root element)
    fencoding        文件编码 (JSON only)           -                            first member if present: UTF-8 | GBK | GB18030
    fbatchseqid      提交银企批次流水                PaymentFile.message_id        required, 1-35 (the BatchId)
    fcreatetime      创建时间                      PaymentFile.created           optional, Beijing time or ISO 8601
    ftotalcount      总笔数                        -                            required, = number of bills
    ftotalamount     总金额                        -                            required, = sum of famount
    data             付款明细 (XML: data/bill)      transactions                 1-1000 bills
    fpayunique       付款防重字段/业务参考号          ClientRef                    required, 1-35, unique in the file
    fbizrefno        业务参考号 (对账)               EndToEndId                   optional, 1-35; defaults to ClientRef
    fpayeracct       付款账号                      DebtorAccount                required
    fpayeename       收款人名称                     Creditor/Name                required, 1-70 characters
    fpayeeacct       收款账号                      Creditor/Account             required
    fpayeebank       收款银行                      Creditor/BankName            optional
    frecbanknumber   收款行联行号                   BankCode CNAPS; 本行 = INTERNAL  this or fswiftcode, not both
    fswiftcode       SWIFT 代码                    BankCode BIC                 for payees abroad
    famount          金额 (元)                     Amount                       required, decimal yuan text or JSON number
    fcurrency        币别                          Amount/@currency             required, ISO 4217; RMB means CNY
    fusage           用途                          Purpose                      required, 1-60 characters
    fdescription     摘要                          Remark                       optional, 0-140 characters
    fexpectdealtime  期望处理日期                   RequestedDate                optional, YYYY-MM-DD[ HH:MM:SS]
    fisurgent        是否加急                      Urgency URGENT / NORMAL      optional, true/false/1/0

Encodings: a JSON batch is UTF-8 (a UTF-8 byte-order mark is tolerated). A GBK or GB18030 batch says
so in its first member, `{"fencoding": "GBK", ...}`, found in the leading ASCII bytes before anything is
decoded -- the JSON counterpart of an XML declaration. An XML batch names its encoding in the XML
declaration and is parsed by gateway.protocol.xmlsafe. Bytes that do not match the declared encoding (invalid
GBK, or UTF-8 labelled GBK) refuse the whole file.

Batch policy: file-level faults (not JSON/XML, missing or mistyped fields, wrong ftotalcount or
ftotalamount, a malformed famount, a repeated fpayunique) raise DocumentInvalid with a JSON-pointer
(`/data/2/famount`) or XPath-like (`/bei_bankpaybill/data/bill[3]/famount`) location; business faults
of one bill (a bad account, 联行号 or amount) become that bill's PaymentRejected.
"""
from adapters.base import Adapter, Limits
from adapters.kingdee import bills, reports, samples, statement_read

ADAPTER = Adapter(
    name="kingdee",
    description="Kingdee bei_bankpaybill batches (JSON, XML; UTF-8/GBK/GB18030), statuses and 交易明细",
    payment_readers={"kingdee.json": bills.read_json, "kingdee.xml": bills.read_xml},
    statement_writers={"kingdee.statement.json": reports.write_statement},
    status_writers={"kingdee.status.json": reports.write_status},
    statement_readers={"kingdee.statement.json": statement_read.read_statement},
    text_formats=frozenset({"kingdee.statement.json", "kingdee.status.json"}),
    limits=Limits(max_transactions=bills.MAX_BILLS, amount_unit="major", encodings=("utf-8", "gbk", "gb18030")),
)

# Optional hooks for adapters.kit (see docs/adapters.md): writers to round-trip the payment readers,
# and a reader to check what the statement writer wrote. The gateway itself never calls them.
PAYMENT_WRITERS = {"kingdee.json": samples.write_json, "kingdee.xml": samples.write_xml}
STATEMENT_READERS = ADAPTER.statement_readers
