#!/usr/bin/env python3
"""Fxiaoke / 纷享销客 (ShareCRM) open API simulator for crmbridge tests.

Serves, all as POST + JSON and all answering HTTP 200 with {errorCode, errorMessage,
errorDescription, traceId, ...}: the corp access token (/cgi/corpAccessToken/get/V2) and the
OAuth2 app_secret grant (/oauth2.0/token); CRM data of preset objects on /cgi/crm/v2/data/<verb>
and of custom __c objects on /cgi/crm/custom/v2/data/<verb> (query, get, create, update,
invalid, recover, delete, changeOwner), the batch invalidate /cgi/crm/custom/data/invalid,
/cgi/crm/v2/object/{describe,list} and the employee list /cgi/user/list. Both auth styles: body
corpAccessToken + corpId + currentOpenUserId, or headers authorization: Bearer + x-fs-ea +
x-fs-userid. It does not serve v1 CRM paths, department APIs or the encrypted event push.

Where the public record is silent or contradicts itself, these are the choices made:
- a token asked for again within token_reuse_s (6,600 s) of its issue is the same token; later a
  new one is minted. expiresIn is the remaining lifetime (0..token_ttl_s, 7,200 s).
- bad appSecret or appId: 10006 "the parameter appSecret is missing or illegal" (observed);
  bad permanentCode: 20015 (documented). No auth on a data call: 20017; a wrong or expired
  token (either style): 20016; currentOpenUserId / x-fs-userid unknown or missing: 30027.
- query: limit 1..100, offset >= 0 and a multiple of limit, else 15002. Operators of both
  published vocabularies are accepted (GTE and GE, N and NE/NEQ, NIN and NOT_IN, NLIKE and
  NOT_LIKE) unless config "aliases" is 0. field_values for time, date and number fields may be
  numbers or numeric strings and compare numerically; select fields compare option values
  (labels never match). Invalidated (作废) rows are returned like the others, with life_status
  "invalid". total only with find_explicit_total_num.
- a custom object on the preset path or a preset object on the custom path: 15002.
- get of an unknown id: 320002004 "数据不存在或已被删除"; updating an invalidated row: 320001403.
- update without object_data._id: -2 "java.lang.NullPointerException" (as integrators saw).
- employees: a seeded directory (李伟, 陈静, 王芳 without an e-mail, two named 张伟) in departments
  999999 (the whole company) > 1000 销售部 / 1001 研发部. /cgi/user/list takes departmentId (an
  integer; unknown: 30007) and fetchChild, and answers userList in one piece (no paging).
  Employee fields take [openUserId] (or the numeric employee id); another value is 30027
  "employee not found". update ignores `owner` (the owner changes only through changeOwner, a
  separate permission in the web UI; an ignored owner is the trap a client must not fall into,
  so tests have to read the owner back), create takes it.
- select values on writes must be option values; a label is rejected (15002), so are unknown
  fields, read-only system fields and dates that are not epoch milliseconds.
- rate limits: per interface (path) rate_calls in rate_window_s -> 30004; daily_quota calls per
  day -> 30002; config no_quota 1 -> 30003.
- faults: simbase's "status" rule with a status outside 100..599 (-1, 50009, 30004) answers
  HTTP 200 with that errorCode; a status in 100..599 answers that HTTP status (a gateway error).
- follow-up records (ActiveRecordObj): active_record_content (long text, required) and
  related_object_data [{describe_api_name, id, name}] naming live records; a filter on
  related_object_data matches the related ids (HASANYOF, IN, EQ). A follow-up leaves the
  last_modified_time of the records it names alone.
- config expire_tokens_after N: every token dies when the N-th API call from now arrives (a
  token expiring in the middle of a run).
- config edit_while_paging N: while serving query pages, the simulator edits (as 李伟) up to
  edit_per_page rows per page, N in all, choosing rows already served (they move to the end of a
  last_modified_time order, so naive offset paging skips rows).

Control (besides simbase's): POST /_sim/seed {"object", "records": [...], "count": N, "user"},
/_sim/edit {"object", "id", "fields", "user", "invalid": true|false}, /_sim/config,
/_sim/expire_tokens, /_sim/users {"name", "email", "department", "count"} (adds employees);
GET /_sim/records?object=, /_sim/stats, /_sim/config.
"""

import random
import secrets
from datetime import datetime, timedelta, timezone

from simbase import Reply, Sim, serve

DAY_MS = 86400 * 1000
APP = {"appId": "FSAID_SIMAPP01", "appSecret": "sim-app-secret",
       "permanentCode": "sim-permanent-code"}
CORP_ID = "FSCID_SIMCORP01"
EA = "fssim001"
# (open user id, employee id for header auth, name, e-mail or None, department)
USERS = [("FSUID_00000000000000000000000000000001", "1000", "集成账号", "crm-bot@fssim.example.com",
          999999),
         ("FSUID_00000000000000000000000000000002", "1001", "李伟", "liwei@fssim.example.com", 1000),
         ("FSUID_00000000000000000000000000000003", "1002", "陈静", "chenjing@fssim.example.com",
          1000),
         ("FSUID_00000000000000000000000000000004", "1003", "王芳", None, 1001),
         ("FSUID_00000000000000000000000000000005", "1004", "张伟", "zhangwei.s@fssim.example.com",
          1000),
         ("FSUID_00000000000000000000000000000006", "1005", "张伟", "zhangwei.rd@fssim.example.com",
          1001)]
DEPARTMENTS = {999999: None, 1000: 999999, 1001: 999999}  # id -> parent
DEFAULT_CONFIG = {"token_ttl_s": 7200, "token_reuse_s": 6600, "rate_calls": 100,
                  "rate_window_s": 20, "daily_quota": 1000000, "no_quota": 0, "aliases": 1,
                  "edit_while_paging": 0, "edit_per_page": 10, "tz_offset_min": 480,
                  "expire_tokens_after": 0}

OPS = {"EQ", "N", "GT", "GTE", "LT", "LTE", "LIKE", "NLIKE", "IS", "ISN", "IN", "NIN",
       "BETWEEN", "NBETWEEN", "STARTWITH", "ENDWITH", "CONTAINS", "HASANYOF", "NHASANYOF"}
ALIASES = {"NE": "N", "NEQ": "N", "GE": "GTE", "LE": "LTE", "NOT_IN": "NIN",
           "NOT_LIKE": "NLIKE"}
NUMERIC = ("date", "date_time", "number", "currency", "long")
VERBS = ("query", "get", "create", "update", "invalid", "recover", "delete", "changeOwner")
SYSTEM = ("_id", "owner", "created_by", "create_time", "last_modified_by", "last_modified_time",
          "life_status", "lock_status", "record_type", "version", "is_deleted", "object_describe_api_name")

CASE_TITLES = ["导出报表太慢", "单点登录对接企业微信", "发票抬头无法修改", "移动端审批卡顿",
               "客户希望增加批量导入", "Dashboard shows wrong totals", "合同到期提醒不准",
               "API 调用偶尔超时"]


class FxError(Exception):
    def __init__(self, code, message, description=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.description = description or message


def fld(api, label, ftype, required=False, options=None, define="package", unique=False,
        target=None, read_only=False):
    f = {"api_name": api, "label": label, "type": ftype, "is_required": required,
         "is_active": True, "define_type": define, "is_unique": unique,
         "is_readonly": read_only}
    if options:
        f["options"] = [{"value": v, "label": lab} for v, lab in options]
    if target:
        f["target_api_name"] = target
    return f


def system_fields():
    return [fld("_id", "ID", "text", define="system", read_only=True),
            fld("owner", "负责人", "employee", define="system"),
            fld("created_by", "创建人", "employee", define="system", read_only=True),
            fld("create_time", "创建时间", "date_time", define="system", read_only=True),
            fld("last_modified_by", "最后修改人", "employee", define="system", read_only=True),
            fld("last_modified_time", "最后修改时间", "date_time", define="system",
                read_only=True),
            fld("life_status", "生命状态", "select_one", define="system", read_only=True,
                options=[("normal", "正常"), ("invalid", "作废"), ("ineffective", "未生效"),
                         ("under_review", "审核中")]),
            fld("lock_status", "锁定状态", "select_one", define="system", read_only=True,
                options=[("0", "未锁定"), ("1", "锁定")]),
            fld("record_type", "业务类型", "record_type", define="system"),
            fld("version", "版本", "text", define="system", read_only=True)]


def named(api, label):
    return [fld("name", label, "text", required=True)] + system_fields()


def active_record_fields():
    """销售记录 (follow-up records): the text and the records it is about, as integrators read
    them (active_record_content, related_object_data [{describe_api_name, id, name}])."""
    return [fld("name", "主题", "text"),
            fld("active_record_content", "跟进内容", "long_text", required=True),
            fld("related_object_data", "关联对象", "related_object")] + system_fields()


def cases_fields():
    return [fld("name", "工单主题", "text", required=True),
            fld("case_no", "工单编号", "auto_number", read_only=True),
            fld("description", "问题描述", "long_text"),
            fld("status", "工单状态", "select_one",
                options=[("1", "新建"), ("2", "处理中"), ("3", "待客户确认"), ("4", "已解决"),
                         ("5", "已关闭")]),
            fld("priority", "优先级", "select_one",
                options=[("1", "紧急"), ("2", "高"), ("3", "中"), ("4", "低")]),
            fld("deadline", "截止日期", "date"),
            fld("account_id", "客户名称", "object_reference", target="AccountObj"),
            fld("tags", "标签", "select_many",
                options=[("t1", "报表"), ("t2", "移动端"), ("t3", "集成")]),
            fld("tracker_ref__c", "跟踪单号 (Jira / Trello)", "text", define="custom"),
            fld("field_engineer__c", "处理工程师", "employee", define="custom"),
            fld("crmbridge_id__c", "crmbridge 标记", "text", define="custom", unique=True)
            ] + system_fields()


def feedback_fields():
    return [fld("name", "反馈标题", "text", required=True),
            fld("field_content__c", "反馈内容", "long_text", define="custom"),
            fld("field_state__c", "处理状态", "select_one", define="custom",
                options=[("option1", "待处理"), ("option2", "处理中"), ("option3", "已完成"),
                         ("option4", "不采纳")]),
            fld("field_source__c", "来源", "text", define="custom"),
            fld("field_jira__c", "关联 Jira", "text", define="custom"),
            fld("crmbridge_id__c", "crmbridge 标记", "text", define="custom", unique=True)
            ] + system_fields()


class Obj:
    def __init__(self, api, label, fields, custom=False):
        self.api = api
        self.label = label
        self.fields = {f["api_name"]: f for f in fields}
        self.custom = custom
        self.rows = {}
        self.seq = 0


class FxiaokeSim(Sim):
    name = "fxiaoke"

    def reset(self):
        self.cfg = dict(DEFAULT_CONFIG)
        self.objs = {}
        for api, label, fields, custom in (
                ("CasesObj", "工单", cases_fields(), False),
                ("AccountObj", "客户", named("AccountObj", "客户名称"), False),
                ("LeadsObj", "销售线索", named("LeadsObj", "姓名"), False),
                ("ContactObj", "联系人", named("ContactObj", "姓名"), False),
                ("PersonnelObj", "人员", named("PersonnelObj", "姓名"), False),
                ("ActiveRecordObj", "销售记录", active_record_fields(), False),
                ("object_feedback__c", "客户反馈", feedback_fields(), True)):
            self.objs[api] = Obj(api, label, fields, custom)
        self.tokens = {}      # token -> {"kind", "issued_ms", "expires_ms", "revoked"}
        self.current = {}     # kind -> token last minted
        self.calls = {}       # path -> [ms, ...] within the window
        self.day_calls = {}   # day number -> count
        self.stats = {"tokens_minted": 0, "corp_tokens": 0, "bearer_tokens": 0,
                      "with_trace_id": 0, "without_trace_id": 0, "workflow_writes": 0,
                      "approval_writes": 0, "writes": 0, "edits_while_paging": 0,
                      "header_auth": 0, "body_auth": 0, "rate_limited": 0}
        self.trace = 0
        self.last_ms = 0
        self.users = list(USERS)
        for name in ("华为技术有限公司", "Acme Trading GmbH", "上海云途信息科技"):
            self.insert("AccountObj", {"name": name}, USERS[0][0])

    # --- plumbing ------------------------------------------------------------------------------
    def wrap(self, code=0, message="OK", description=None, **payload):
        self.trace += 1
        body = {"errorCode": code, "errorMessage": message,
                "errorDescription": description or ("success" if code == 0 else message),
                "traceId": "E-O.sim.%d" % self.trace}
        body.update(payload)
        return Reply(200, body)

    def error_body(self, status, req):
        if 100 <= status <= 599:
            return Reply(status, raw="<html><body><h1>%d</h1>gateway error</body></html>"
                         % status, content_type="text/html; charset=utf-8")
        msgs = {-1: "系统繁忙", -2: "系统错误", 50009: "服务异常，如超时",
                30004: "调用频率超限", 30002: "调用次数超过每日限额"}
        return self.wrap(status, msgs.get(status, "injected error %d" % status))

    def not_found(self, req, status):
        return Reply(status, {"errorCode": 404 if status == 404 else 405,
                              "errorMessage": "no such interface: %s %s" % (req.method,
                                                                            req.path),
                              "errorDescription": "接口不存在", "traceId": "E-O.sim.0"})

    def bad_json(self, req, detail):
        return self.wrap(15002, "illegal parameter: body is not json (%s)" % detail,
                         "参数不合法")

    def dispatch(self, req):
        try:
            return super().dispatch(req)
        except FxError as e:
            if req.path.startswith("/_sim/"):
                return Reply(400, {"error": e.message})
            return self.wrap(e.code, e.message, e.description)

    def stamp(self):
        """A write time: the clock, never going backwards."""
        self.last_ms = max(self.now_ms(), self.last_ms)
        return self.last_ms

    def user(self, key):
        """An employee by open user id, employee id or (control calls) name."""
        for u in self.users:
            if key in u[:3]:
                return u
        return None

    def employee(self, key):
        """An employee by the ids an API call may carry: open user id or employee id."""
        for u in self.users:
            if key in u[:2]:
                return u
        return None

    def day(self):
        return self.now_ms() // DAY_MS

    # --- gate: rate limits and auth --------------------------------------------------------------
    def before_route(self, req):
        with self.lock:
            if req.path.startswith("/_sim/"):
                return None
            self.stats["with_trace_id" if "thirdTraceId" in req.query else "without_trace_id"] += 1
            try:
                if req.method != "POST":
                    raise FxError(15002, "only POST is supported", "请求方式错误")
                self.admit(req.path)
                if not self.is_token_path(req.path):
                    self.authenticate(req)
            except FxError as e:
                return self.wrap(e.code, e.message, e.description)
            except ValueError:
                return self.bad_json(req, "invalid")
        return None

    @staticmethod
    def is_token_path(path):
        return path in ("/cgi/corpAccessToken/get/V2", "/oauth2.0/token")

    def admit(self, path):
        if self.cfg["expire_tokens_after"] > 0:
            self.cfg["expire_tokens_after"] -= 1
            if self.cfg["expire_tokens_after"] == 0:
                self.c_expire_tokens(None)
        if self.cfg["no_quota"]:
            raise FxError(30003, "enterprise has not bought the openapi resource package",
                          "企业未购买 OpenAPI 资源包")
        now = self.now_ms()
        day = self.day()
        if self.day_calls.get(day, 0) >= self.cfg["daily_quota"]:
            raise FxError(30002, "the daily call quota is exceeded", "调用次数超过每日限额")
        window = [t for t in self.calls.get(path, []) if t > now - self.cfg["rate_window_s"] * 1000]
        if len(window) >= self.cfg["rate_calls"]:
            self.calls[path] = window
            self.stats["rate_limited"] += 1
            raise FxError(30004, "the call frequency is exceeded", "调用频率超限")
        window.append(now)
        self.calls[path] = window
        self.day_calls[day] = self.day_calls.get(day, 0) + 1

    def token_ok(self, tok, kind):
        t = self.tokens.get(tok)
        return t and t["kind"] == kind and not t["revoked"] and t["expires_ms"] > self.now_ms()

    def authenticate(self, req):
        auth = req.header("authorization")
        if auth:
            self.stats["header_auth"] += 1
            tok = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
            if not self.token_ok(tok, "bearer") or req.header("x-fs-ea") != EA:
                raise FxError(20016, "the cropId,cropAccessToken or authorization is error",
                              "token 无效或已过期")
            uid = req.header("x-fs-userid")
        else:
            body = req.json()
            if not isinstance(body, dict) or not body.get("corpAccessToken"):
                raise FxError(20017, "corpAccessToken为必填项，不能为空", "缺少 corpAccessToken")
            self.stats["body_auth"] += 1
            if body.get("corpId") != CORP_ID or not self.token_ok(body["corpAccessToken"],
                                                                   "corp"):
                raise FxError(20016, "the cropId,cropAccessToken or authorization is error",
                              "token 无效或已过期")
            uid = body.get("currentOpenUserId")
        u = self.user(uid) if uid else None
        if not u:
            raise FxError(30027, "employee not found: %s" % (uid or "(missing)"), "员工不存在")
        req.fx_user = u[0]

    # --- tokens --------------------------------------------------------------------------------
    def check_app(self, body):
        if not isinstance(body, dict):
            raise FxError(10006, "the parameter appId is missing or illegal", "缺少参数或参数不合法")
        for k in ("appId", "appSecret"):
            if body.get(k) != APP[k]:
                raise FxError(10006, "the parameter %s is missing or illegal" % k,
                              "缺少参数或参数不合法")
        if body.get("permanentCode") != APP["permanentCode"]:
            raise FxError(20015, "permanent code is wrong", "永久授权码错误")

    def mint(self, kind):
        now = self.now_ms()
        cur = self.current.get(kind)
        t = self.tokens.get(cur)
        if t and not t["revoked"] and now - t["issued_ms"] < self.cfg["token_reuse_s"] * 1000:
            return cur, t
        tok = secrets.token_hex(16).upper()
        t = {"kind": kind, "issued_ms": now, "revoked": False,
             "expires_ms": now + self.cfg["token_ttl_s"] * 1000}
        self.tokens[tok] = t
        self.current[kind] = tok
        self.stats["tokens_minted"] += 1
        self.stats[kind + "_tokens"] += 1
        return tok, t

    def remaining_s(self, t):
        return max(0, (t["expires_ms"] - self.now_ms()) // 1000)

    def r_corp_token(self, req):
        self.check_app(req.json())
        tok, t = self.mint("corp")
        return self.wrap(0, "success", corpAccessToken=tok, corpId=CORP_ID,
                         expiresIn=self.remaining_s(t))

    def r_oauth_token(self, req):
        body = req.json()
        self.check_app(body)
        if body.get("grantType") != "app_secret":
            raise FxError(15002, "grantType must be app_secret", "参数不合法")
        tok, t = self.mint("bearer")
        return self.wrap(0, "success", accessToken=tok, expiresIn=self.remaining_s(t), ea=EA,
                         openUserId=USERS[0][0], appId=APP["appId"])

    # --- routes --------------------------------------------------------------------------------
    def setup_routes(self):
        r = self.route
        r("POST", r"/cgi/corpAccessToken/get/V2", self.r_corp_token)
        r("POST", r"/oauth2.0/token", self.r_oauth_token)
        verbs = "|".join(VERBS)
        r("POST", r"/cgi/crm/v2/data/(%s)" % verbs, lambda q: self.r_data(q, False))
        r("POST", r"/cgi/crm/custom/v2/data/(%s)" % verbs, lambda q: self.r_data(q, True))
        r("POST", r"/cgi/crm/custom/data/invalid", self.r_batch_invalid)
        r("POST", r"/cgi/crm/v2/object/describe", self.r_describe)
        r("POST", r"/cgi/crm/v2/object/list", self.r_list_objects)
        r("POST", r"/cgi/user/list", self.r_user_list)
        c = self.control
        c("POST", r"/_sim/seed", self.c_seed)
        c("POST", r"/_sim/edit", self.c_edit)
        c("GET", r"/_sim/records", self.c_records)
        c("POST", r"/_sim/config", self.c_config)
        c("GET", r"/_sim/config", lambda q: Reply(200, self.cfg))
        c("POST", r"/_sim/expire_tokens", self.c_expire_tokens)
        c("GET", r"/_sim/stats", lambda q: Reply(200, self.stats))
        c("POST", r"/_sim/users", self.c_users)

    def data_of(self, req):
        body = req.json()
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict):
            raise FxError(15002, "illegal parameter: data is required", "参数不合法")
        return body, data

    def obj_of(self, api, custom_path):
        obj = self.objs.get(api)
        if obj is None:
            raise FxError(15002, "object '%s' does not exist" % api, "对象不存在")
        if custom_path is not None and obj.custom != custom_path:
            raise FxError(15002, "object '%s' is %s; use /cgi/crm/%sv2/data" % (
                api, "custom" if obj.custom else "preset", "custom/" if obj.custom else ""),
                "对象 apiName 与接口不匹配")
        return obj

    def r_data(self, req, custom):
        verb = req.match.group(1)
        body, data = self.data_of(req)
        if verb == "update":
            return self.r_update(req, body, data, custom)
        if verb == "create":
            return self.r_create(req, body, data, custom)
        obj = self.obj_of(data.get("dataObjectApiName"), custom)
        return getattr(self, "v_" + verb)(req, obj, data)

    # --- values --------------------------------------------------------------------------------
    def label_of(self, f, v):
        for o in f.get("options", []):
            if o["value"] == v:
                return o["label"]
        return None

    def render(self, obj, row, projection=None):
        out = {}
        for k, v in row.items():
            if projection and k not in projection and k != "_id":
                continue
            out[k] = v
            f = obj.fields.get(k)
            if f and f["type"] == "employee" and isinstance(v, list):
                u = self.user(v[0]) if v else None
                out[k + "__r"] = {"id": v[0], "name": u[2]} if u else None
            elif f and f["type"] == "object_reference" and v:
                target = self.objs[f["target_api_name"]].rows.get(v)
                out[k + "__r"] = target["name"] if target else None
                out[k + "__relation_ids"] = v
        out["object_describe_api_name"] = obj.api
        return out

    def coerce(self, obj, k, v, seed=False):
        f = obj.fields.get(k)
        if f is None:
            raise FxError(15002, "field '%s' does not exist on '%s'" % (k, obj.api), "字段不存在")
        if v is None or v == "":
            if f["is_required"]:
                raise FxError(15002, "field '%s' is required" % k, "必填字段不能为空")
            return None
        t = f["type"]
        if t in ("date", "date_time"):
            if seed and isinstance(v, str) and len(v) == 10 and v[4] == "-":
                tz = timezone(timedelta(minutes=self.cfg["tz_offset_min"]))
                return int(datetime.strptime(v, "%Y-%m-%d").replace(tzinfo=tz).timestamp() * 1000)
            if isinstance(v, bool) or not (isinstance(v, int) or (isinstance(v, str) and v.isdigit())):
                raise FxError(15002, "field '%s' takes epoch milliseconds, got %r" % (k, v),
                              "日期格式错误")
            return int(v)
        if t == "select_one":
            return self.option(f, v, seed)
        if t == "select_many":
            if not isinstance(v, list):
                raise FxError(15002, "field '%s' takes a list of option values" % k, "参数不合法")
            return [self.option(f, x, seed) for x in v]
        if t == "object_reference":
            target = self.objs[f["target_api_name"]]
            if seed and v not in target.rows:
                v = self.find_or_make(target, v)
            if v not in target.rows:
                raise FxError(15002, "field '%s': no %s '%s'" % (k, target.api, v), "关联数据不存在")
            return v
        if t == "related_object":
            return self.related(k, v)
        if t == "employee":
            ids = v if isinstance(v, list) else [v]
            us = [(self.user if seed else self.employee)(x) for x in ids]
            if not all(us):
                raise FxError(30027, "employee not found: %s" % ", ".join(
                    str(x) for x, u in zip(ids, us) if not u), "员工不存在")
            return [u[0] for u in us]
        if not isinstance(v, str):
            raise FxError(15002, "field '%s' takes text, got %r" % (k, v), "参数不合法")
        return v

    def related(self, k, v):
        """related_object_data: a list of {describe_api_name, id} naming live records."""
        if not isinstance(v, list) or not all(isinstance(e, dict) for e in v):
            raise FxError(15002, "field '%s' takes [{describe_api_name, id}]" % k, "参数不合法")
        out = []
        for e in v:
            obj = self.objs.get(e.get("describe_api_name"))
            row = obj.rows.get(e.get("id")) if obj and isinstance(e.get("id"), str) else None
            if row is None:
                raise FxError(15002, "field '%s': no %s '%s'" % (k, e.get("describe_api_name"),
                                                                  e.get("id")), "关联数据不存在")
            out.append({"describe_api_name": obj.api, "id": row["_id"], "name": row.get("name")})
        return out

    def option(self, f, v, seed):
        for o in f["options"]:
            if o["value"] == v or (seed and o["label"] == v):
                return o["value"]
        raise FxError(15002, "field '%s': '%s' is not an option value (allowed: %s)" % (
            f["api_name"], v, ", ".join(o["value"] for o in f["options"])), "选项值不存在")

    def find_or_make(self, target, name):
        for rid, row in target.rows.items():
            if row.get("name") == name:
                return rid
        return self.insert(target.api, {"name": name}, USERS[0][0])

    def check_unique(self, obj, vals, rid=None):
        for k, v in vals.items():
            if v is not None and obj.fields[k].get("is_unique"):
                for other in obj.rows.values():
                    if other["_id"] != rid and other.get(k) == v:
                        raise FxError(15002, "field '%s' must be unique; '%s' exists" % (k, v),
                                      "唯一性校验失败")

    def insert(self, api, vals, user, when=None):
        obj = self.objs[api]
        now = self.stamp() if when is None else when
        rid = secrets.token_hex(12)
        obj.seq += 1
        row = {"_id": rid, "owner": [user], "created_by": [user], "create_time": now,
               "last_modified_by": [user], "last_modified_time": now, "life_status": "normal",
               "lock_status": "0", "record_type": "default__c", "version": "1",
               "is_deleted": False}
        if "case_no" in obj.fields:
            row["case_no"] = "GD-%06d" % obj.seq
        row.update({k: v for k, v in vals.items() if v is not None})
        obj.rows[rid] = row
        return rid

    def touch(self, row, user):
        row["last_modified_time"] = self.stamp()
        row["last_modified_by"] = [user]
        row["version"] = str(int(row["version"]) + 1)

    def write_vals(self, obj, od, seed=False, allow=()):
        vals = {}
        for k, v in od.items():
            if k in ("dataObjectApiName", "_id"):
                continue
            f = obj.fields.get(k)
            if f and (f["is_readonly"] and k not in allow
                      and not (seed and k in ("create_time", "last_modified_time"))):
                raise FxError(15002, "field '%s' is read-only" % k, "只读字段不能修改")
            vals[k] = self.coerce(obj, k, v, seed)
        return vals

    def note_flags(self, body):
        self.stats["writes"] += 1
        if body.get("triggerWorkFlow", True):
            self.stats["workflow_writes"] += 1
        if body.get("triggerApprovalFlow", True):
            self.stats["approval_writes"] += 1

    def r_create(self, req, body, data, custom):
        od = data.get("object_data")
        if not isinstance(od, dict):
            raise FxError(15002, "illegal parameter: data.object_data is required", "参数不合法")
        obj = self.obj_of(od.get("dataObjectApiName"), custom)
        # hasSpecifyTime / hasSpecifyCreatedBy let a create keep a migrated record's
        # create_time / created_by; without them both stay read-only
        allow = tuple(k for k, opt in (("create_time", "hasSpecifyTime"),
                                       ("created_by", "hasSpecifyCreatedBy")) if body.get(opt) is True)
        vals = self.write_vals(obj, od, allow=allow)
        for k, f in obj.fields.items():
            if f["is_required"] and vals.get(k) in (None, "", []):
                raise FxError(15002, "field '%s' is required" % k, "必填字段不能为空")
        self.check_unique(obj, vals)
        self.note_flags(body)
        rid = self.insert(obj.api, vals, req.fx_user)
        return self.wrap(0, "OK", dataId=rid)

    def r_update(self, req, body, data, custom):
        od = data.get("object_data")
        if not isinstance(od, dict) or not od.get("_id"):
            raise FxError(-2, "java.lang.NullPointerException", "系统错误")
        obj = self.obj_of(od.get("dataObjectApiName"), custom)
        row = self.live_row(obj, od["_id"])
        if row["life_status"] == "invalid":
            raise FxError(320001403, "invalid data cannot be edited", "已作废的数据不能编辑")
        vals = self.write_vals(obj, {k: v for k, v in od.items() if k != "owner"})
        if "name" in vals and not vals["name"]:
            raise FxError(15002, "field 'name' is required", "必填字段不能为空")
        self.check_unique(obj, vals, row["_id"])
        self.note_flags(body)
        row.update(vals)
        self.touch(row, req.fx_user)
        return self.wrap(0, "OK", dataId=row["_id"])

    def live_row(self, obj, rid):
        row = obj.rows.get(rid) if isinstance(rid, str) else None
        if row is None:
            raise FxError(320002004, "data not found: %s" % rid, "数据不存在或已被删除")
        return row

    def v_get(self, req, obj, data):
        row = self.live_row(obj, data.get("objectDataId"))
        return self.wrap(0, "OK", data=self.render(obj, row))

    def set_life(self, req, obj, rid, status):
        row = self.live_row(obj, rid)
        row["life_status"] = status
        self.touch(row, req.fx_user)
        return row

    def v_invalid(self, req, obj, data):
        row = self.set_life(req, obj, data.get("object_data_id"), "invalid")
        return self.wrap(0, "OK", dataId=row["_id"])

    def v_recover(self, req, obj, data):
        row = self.set_life(req, obj, data.get("object_data_id"), "normal")
        return self.wrap(0, "OK", dataId=row["_id"])

    def r_batch_invalid(self, req):
        _, data = self.data_of(req)
        obj = self.obj_of(data.get("dataObjectApiName"), None)
        for rid in data.get("idList") or []:
            self.set_life(req, obj, rid, "invalid")
        return self.wrap(0, "OK")

    def v_delete(self, req, obj, data):
        ids = data.get("idList") or []
        for rid in ids:
            if self.live_row(obj, rid)["life_status"] != "invalid":
                raise FxError(15002, "only invalidated data can be deleted: %s" % rid,
                              "只能删除已作废的数据")
        for rid in ids:
            del obj.rows[rid]
        return self.wrap(0, "OK")

    def v_changeOwner(self, req, obj, data):
        items = data.get("Data")
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise FxError(15002, "illegal parameter: data.Data must be a list", "参数不合法")
        for item in items:
            owner = item.get("ownerId")
            if not isinstance(owner, list) or len(owner) != 1:
                raise FxError(15002, "ownerId must be a list of one employee", "参数不合法")
            row = self.live_row(obj, item.get("objectDataId"))
            row["owner"] = self.coerce(obj, "owner", owner)
            self.touch(row, req.fx_user)
        return self.wrap(0, "OK")

    # --- employees -----------------------------------------------------------------------------
    def in_department(self, dept, want, children):
        while dept is not None:
            if dept == want:
                return True
            dept = DEPARTMENTS.get(dept) if children else None
        return False

    def user_json(self, u):
        return {"openUserId": u[0], "account": u[1], "name": u[2], "nickName": u[2],
                "email": u[3] or "", "mobile": "1380000%04d" % (int(u[1]) % 10000),
                "departmentIds": [u[4]], "mainDepartmentId": u[4], "position": "",
                "isStop": False, "createTime": 1700000000000}

    def r_user_list(self, req):
        body = req.json()
        dept, children = body.get("departmentId"), body.get("fetchChild", False)
        if isinstance(dept, bool) or not isinstance(dept, int) or not isinstance(children, bool):
            raise FxError(15002, "departmentId (integer) is required; fetchChild is a boolean",
                          "参数不合法")
        if dept not in DEPARTMENTS:
            raise FxError(30007, "department not found: %d" % dept, "部门不存在")
        return self.wrap(0, "success", userList=[
            self.user_json(u) for u in self.users if self.in_department(u[4], dept, children)])

    def c_users(self, req):
        """{"name", "email", "department"} adds one employee; {"count": N} adds N of them."""
        body = req.json() or {}
        added = []
        for _ in range(int(body.get("count", 1))):
            n = len(self.users) + 1
            added.append(("FSUID_%032X" % (0xA000 + n), str(1000 + n - 1),
                          body.get("name") or "员工%d" % n, body.get("email"),
                          int(body.get("department", 1000))))
            self.users.append(added[-1])
        return Reply(200, {"users": [self.user_json(u) for u in added]})

    # --- query ---------------------------------------------------------------------------------
    def v_query(self, req, obj, data):
        sqi = data.get("search_query_info")
        if not isinstance(sqi, dict):
            raise FxError(15002, "illegal parameter: search_query_info is required", "参数不合法")
        limit, offset = sqi.get("limit", 20), sqi.get("offset", 0)
        if not isinstance(limit, int) or not 1 <= limit <= 100:
            raise FxError(15002, "limit must be 1..100, got %r" % limit, "limit 最大为 100")
        if not isinstance(offset, int) or offset < 0 or offset % limit:
            raise FxError(15002, "offset must be a multiple of limit, got %r" % offset,
                          "offset 必须是 limit 的整数倍")
        preds = [self.predicate(obj, f) for f in sqi.get("filters") or []]
        rows = [r for r in obj.rows.values() if all(p(r) for p in preds)]
        rows = self.sorted_rows(obj, rows, sqi.get("orders") or [])
        page = rows[offset:offset + limit]
        proj = sqi.get("fieldProjection") or None
        out = {"dataList": [self.render(obj, r, proj) for r in page], "offset": offset,
               "limit": limit}
        if data.get("find_explicit_total_num"):
            out["total"] = len(rows)
        self.edit_while_paging(obj, rows[:offset + len(page)])
        return self.wrap(0, "OK", data=out)

    def sorted_rows(self, obj, rows, orders):
        for o in reversed(orders):
            name = o.get("fieldName")
            if name not in obj.fields:
                raise FxError(15002, "cannot order by unknown field '%s'" % name, "字段不存在")
            numeric = obj.fields[name]["type"] in NUMERIC
            rows = sorted(rows, key=lambda r: (r.get(name) is not None,
                                               (r.get(name) or 0) if numeric else
                                               str(r.get(name) or "")),
                          reverse=not o.get("isAsc", True))
        return rows

    def edit_while_paging(self, obj, served):
        """A human editing rows the client has already been served: they jump to the end."""
        n = min(self.cfg["edit_while_paging"], self.cfg["edit_per_page"])
        for row in [r for r in served if r["life_status"] == "normal"][:n]:
            self.cfg["edit_while_paging"] -= 1
            self.stats["edits_while_paging"] += 1
            if "description" in obj.fields:
                row["description"] = "第%d次修改" % self.stats["edits_while_paging"]
            self.touch(row, USERS[1][0])

    def predicate(self, obj, flt):
        name, op, vals = flt.get("field_name"), flt.get("operator"), flt.get("field_values")
        f = obj.fields.get(name)
        if f is None:
            raise FxError(15002, "cannot filter on unknown field '%s'" % name, "字段不存在")
        if self.cfg["aliases"]:
            op = ALIASES.get(op, op)
        if op not in OPS:
            raise FxError(15002, "unknown operator '%s'" % op, "操作符不合法")
        if not isinstance(vals, list):
            raise FxError(15002, "field_values must be a list", "参数不合法")
        numeric = f["type"] in NUMERIC
        try:
            want = [float(v) if numeric else v for v in vals]
        except (TypeError, ValueError):
            raise FxError(15002, "field '%s' compares numbers, got %r" % (name, vals), "参数不合法")
        if op in ("GT", "GTE", "LT", "LTE", "EQ", "N", "LIKE", "NLIKE", "STARTWITH", "ENDWITH") \
                and len(want) < 1 or op in ("BETWEEN", "NBETWEEN") and len(want) != 2:
            raise FxError(15002, "operator %s needs more field_values" % op, "参数不合法")
        if f["type"] == "related_object":  # matches the ids of the related records
            return lambda row: self.match([e["id"] for e in row.get(name) or []], op, want, False)
        return lambda row: self.match(row.get(name), op, want, numeric)

    @staticmethod
    def match(have, op, want, numeric):
        many = have if isinstance(have, list) else [have]
        h = (float(have) if numeric and have is not None else have)
        w = want[0] if want else None
        cmp_ok = h is not None and not isinstance(h, list)
        table = {
            "EQ": lambda: h == w, "N": lambda: h != w,
            "GT": lambda: cmp_ok and h > w, "GTE": lambda: cmp_ok and h >= w,
            "LT": lambda: cmp_ok and h < w, "LTE": lambda: cmp_ok and h <= w,
            "IN": lambda: any(x in want for x in many) if have is not None else False,
            "NIN": lambda: not any(x in want for x in many),
            "BETWEEN": lambda: cmp_ok and want[0] <= h <= want[1],
            "NBETWEEN": lambda: not (cmp_ok and want[0] <= h <= want[1]),
            "IS": lambda: have in (None, "", []), "ISN": lambda: have not in (None, "", []),
            "LIKE": lambda: isinstance(have, str) and str(w) in have,
            "NLIKE": lambda: not (isinstance(have, str) and str(w) in have),
            "STARTWITH": lambda: isinstance(have, str) and have.startswith(str(w)),
            "ENDWITH": lambda: isinstance(have, str) and have.endswith(str(w)),
            "CONTAINS": lambda: any(x in many for x in want),
            "HASANYOF": lambda: any(x in many for x in want),
            "NHASANYOF": lambda: not any(x in many for x in want)}
        return table[op]()

    # --- describe ------------------------------------------------------------------------------
    def r_describe(self, req):
        body = req.json() or {}
        data = body.get("data") if isinstance(body.get("data"), dict) else body
        obj = self.obj_of(data.get("apiName"), None)
        fields = {k: dict(f) for k, f in obj.fields.items()}
        return self.wrap(0, "OK", data={"describe": {
            "api_name": obj.api, "display_name": obj.label,
            "define_type": "custom" if obj.custom else "package", "fields": fields}})

    def r_list_objects(self, req):
        return self.wrap(0, "OK", data={"describe": [
            {"api_name": o.api, "display_name": o.label,
             "define_type": "custom" if o.custom else "package"} for o in self.objs.values()]})

    # --- control -------------------------------------------------------------------------------
    def control_obj(self, name):
        if name not in self.objs:
            raise FxError(15002, "no object '%s'" % name)
        return self.objs[name]

    def c_seed(self, req):
        body = req.json() or {}
        obj = self.control_obj(body.get("object", "CasesObj"))
        user = (self.user(body.get("user")) or USERS[1])[0]
        ids = []
        for rec in body.get("records", []):
            vals = self.write_vals(obj, rec, seed=True)
            self.check_unique(obj, vals)
            when = vals.pop("last_modified_time", None)
            rid = self.insert(obj.api, vals, user)
            if when is not None:
                obj.rows[rid]["last_modified_time"] = when
            ids.append(rid)
        n = int(body.get("count", 0))
        rng = random.Random(4000 + len(obj.rows))
        start = self.now_ms() - (n + 60) * 1000
        for k in range(n):
            rec = self.generated(obj, rng, k)
            ids.append(self.insert(obj.api, self.write_vals(obj, rec, seed=True), user,
                                   when=start + k * 1000))
        return Reply(200, {"ids": ids, "count": len(ids)})

    def generated(self, obj, rng, k):
        rec = {"name": "%s #%d" % (rng.choice(CASE_TITLES), k + 1)}
        for f in obj.fields.values():
            if f["type"] == "select_one" and f["define_type"] != "system":
                rec[f["api_name"]] = rng.choice(f["options"])["value"]
        if "description" in obj.fields:
            rec["description"] = "客户反馈：第 %d 条" % (k + 1)
        return rec

    def c_edit(self, req):
        body = req.json() or {}
        obj = self.control_obj(body.get("object", "CasesObj"))
        row = obj.rows.get(body.get("id"))
        if row is None:
            return Reply(404, {"error": "no record '%s'" % body.get("id")})
        user = (self.user(body.get("user")) or USERS[1])[0]
        row.update(self.write_vals(obj, body.get("fields") or {}, seed=True))
        if "invalid" in body:
            row["life_status"] = "invalid" if body["invalid"] else "normal"
        self.touch(row, user)
        return Reply(200, self.control_row(obj, row))

    def control_row(self, obj, row):
        out = self.render(obj, row)
        for k, v in row.items():
            f = obj.fields.get(k)
            if f and f["type"] == "select_one":
                out[k + "__label"] = self.label_of(f, v)
        return out

    def c_records(self, req):
        obj = self.control_obj(req.query.get("object", "CasesObj"))
        out = [self.control_row(obj, r) for r in obj.rows.values()]
        return Reply(200, {"data": out, "count": len(out)})

    def c_config(self, req):
        for k, v in (req.json() or {}).items():
            if k not in self.cfg:
                return Reply(400, {"error": "unknown config key '%s'" % k})
            self.cfg[k] = int(v)
        if "rate_calls" in (req.json() or {}):
            self.calls = {}
        return Reply(200, self.cfg)

    def c_expire_tokens(self, req):
        n = 0
        for t in self.tokens.values():
            n += 0 if t["revoked"] else 1
            t["revoked"] = True
        return Reply(200, {"expired": n})


if __name__ == "__main__":
    serve(FxiaokeSim())
