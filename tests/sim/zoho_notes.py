"""Notes of the Zoho CRM simulator (a mixin of ZohoSim): the related list
GET/POST /crm/v8/{module}/{record_id}/Notes, the module-wide GET /crm/v8/Notes (fields required,
page/per_page, sort_by, If-Modified-Since) and PUT /crm/v8/Notes/{id}, with the v8 read shape
(Parent_Id {module {api_name, id}, name, id}) and the per-record SUCCESS / error results of record
writes.

Where the public record is silent, these are the choices made (tests rely on them):
- adding or editing a note leaves its parent record's Modified_Time alone.
- Note_Content is plain text and mandatory on create; a related-list create ignores Parent_Id
  and se_module in the body; unknown keys in a note: INVALID_DATA with the api_name.
- the related list of an unknown or deleted record: 400 INVALID_DATA "the related id given seems
  to be invalid"; updating an unknown note: 400 with data[] INVALID_DATA api_name "id".

Control: POST /_sim/note {"module","id","text","title","user"} adds a note as a person,
POST /_sim/note_edit {"id","text","user"} edits one, GET /_sim/notes?module=&id= lists them.
"""

from simbase import Reply

API = "/crm/v8"
NOTE_FIELDS = ("id", "Note_Title", "Note_Content", "Parent_Id", "Owner", "Created_By",
               "Modified_By", "Created_Time", "Modified_Time")
WRITABLE = ("Note_Title", "Note_Content", "Parent_Id", "se_module", "$se_module")


class ZohoNotes:
    """Needs the host's ApiError, new_id, now_s_ms, org_time, user_ref, user_by_name,
    int_param, modules and api_user."""

    def notes_routes(self, api_error):
        self.NoteError = api_error
        r = self.route
        r("GET", API + r"/Notes", self.r_notes_all)
        r("PUT", API + r"/Notes/([^/]+)", self.r_note_put)
        r("GET", API + r"/([^/]+)/([^/]+)/Notes", self.r_notes_related)
        r("POST", API + r"/([^/]+)/([^/]+)/Notes", self.r_notes_create)
        c = self.control
        c("POST", r"/_sim/note", self.c_note)
        c("POST", r"/_sim/note_edit", self.c_note_edit)
        c("GET", r"/_sim/notes", self.c_notes)

    # --- rendering -------------------------------------------------------------------------------
    def note_render(self, n, fields=None):
        mod = self.modules[n["module"]]
        parent = mod.rows.get(n["parent"])
        full = {"id": n["id"], "Note_Title": n["title"], "Note_Content": n["content"],
                "Parent_Id": {"module": {"api_name": mod.api_name, "id": mod.id},
                              "name": parent["v"].get(mod.display_field) if parent else None,
                              "id": n["parent"]},
                "Owner": self.user_ref(n["owner"]),
                "Created_By": self.user_ref(n["created_by"]),
                "Modified_By": self.user_ref(n["modified_by"]),
                "Created_Time": self.org_time(n["created"]),
                "Modified_Time": self.org_time(n["modified"])}
        out = {k: v for k, v in full.items() if fields is None or k in fields or k == "id"}
        out.update({"$editable": True, "$se_module": mod.api_name, "$attachments": None,
                    "$is_edit_allowed": True})
        return out

    def note_fields_param(self, raw):
        if raw is None or not raw.strip():
            raise self.NoteError(400, "REQUIRED_PARAM_MISSING",
                                 "One of the expected parameter is missing",
                                 {"param_name": "fields"})
        names = [x.strip() for x in raw.split(",") if x.strip()]
        for x in names:
            if x not in NOTE_FIELDS:
                raise self.NoteError(400, "INVALID_DATA", "invalid data",
                                     {"param_name": "fields", "api_name": x})
        return set(names)

    def notes_page(self, req, notes):
        q = req.query
        fields = self.note_fields_param(q.get("fields"))
        sort_by = q.get("sort_by", "id")
        order = q.get("sort_order", "desc")
        if sort_by not in ("id", "Created_Time", "Modified_Time") or order not in ("asc", "desc"):
            raise self.NoteError(400, "INVALID_DATA", "invalid data", {"param_name": "sort_by"})
        per_page = self.int_param(q, "per_page", 200, 1, 200)
        page = self.int_param(q, "page", 1, 1)
        key = {"id": lambda n: int(n["id"]), "Created_Time": lambda n: (n["created"], int(n["id"])),
               "Modified_Time": lambda n: (n["modified"], int(n["id"]))}[sort_by]
        notes = sorted(notes, key=key, reverse=order == "desc")
        window = notes[(page - 1) * per_page:page * per_page]
        if not window:
            return Reply(204)
        more = page * per_page < len(notes)
        return Reply(200, {"data": [self.note_render(n, fields) for n in window],
                           "info": {"per_page": per_page, "count": len(window), "page": page,
                                    "sort_by": sort_by, "sort_order": order,
                                    "more_records": more}})

    # --- reading ---------------------------------------------------------------------------------
    def live_notes(self):
        return [n for n in self.notes.values()
                if self.modules[n["module"]].live(n["parent"]) is not None]

    def r_notes_all(self, req):
        notes = self.live_notes()
        ims = self.time_header(req, "If-Modified-Since")
        if ims is not None:
            notes = [n for n in notes if n["modified"] > ims]
            if not notes:
                return Reply(304)
        return self.notes_page(req, notes)

    def note_parent(self, req):
        mod = self.module_of(req)
        rid = req.match.group(2)
        if mod.live(rid) is None:
            raise self.NoteError(400, "INVALID_DATA", "the related id given seems to be invalid",
                                 {"id": rid})
        return mod, rid

    def r_notes_related(self, req):
        mod, rid = self.note_parent(req)
        return self.notes_page(req, [n for n in self.notes.values()
                                     if n["module"] == mod.api_name and n["parent"] == rid])

    # --- writing ---------------------------------------------------------------------------------
    def note_items(self, req, limit):
        body = req.json()
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list) or not data:
            raise self.NoteError(400, "MANDATORY_NOT_FOUND", "required field not found",
                                 {"api_name": "data", "json_path": "$.data"})
        if len(data) > limit:
            raise self.NoteError(400, "LIMIT_EXCEEDED", "Record count exceeded",
                                 {"limit": limit, "api_name": "data"})
        return data

    @staticmethod
    def note_problem(i, item, creating):
        def err(code, msg, api):
            return {"code": code, "details": {"api_name": api, "json_path": "$.data[%d].%s"
                                              % (i, api)}, "message": msg, "status": "error"}
        if not isinstance(item, dict):
            return err("INVALID_DATA", "invalid data", "data")
        for k in item:
            if k not in WRITABLE and k != "id":
                return err("INVALID_DATA", "invalid data", k)
        for k in ("Note_Title", "Note_Content"):
            if k in item and not isinstance(item[k], str):
                return err("INVALID_DATA", "invalid data", k)
        if creating and not (item.get("Note_Content") or "").strip():
            return err("MANDATORY_NOT_FOUND", "required field not found", "Note_Content")
        return None

    def note_success(self, n, message):
        return {"code": "SUCCESS", "message": message, "status": "success",
                "details": {"Modified_Time": self.org_time(n["modified"]),
                            "Modified_By": self.user_ref(n["modified_by"], email=False),
                            "Created_Time": self.org_time(n["created"]), "id": n["id"],
                            "Created_By": self.user_ref(n["created_by"], email=False)}}

    def note_add(self, mod, rid, title, content, user):
        now = self.now_s_ms()
        n = {"id": self.new_id(), "module": mod.api_name, "parent": rid, "title": title,
             "content": content, "created": now, "modified": now, "owner": user,
             "created_by": user, "modified_by": user}
        self.notes[n["id"]] = n
        return n

    def note_set(self, n, item, user):
        for k, f in (("Note_Title", "title"), ("Note_Content", "content")):
            if k in item:
                n[f] = item[k]
        n["modified"] = max(self.now_s_ms(), n["modified"] + 1000)
        n["modified_by"] = user

    def r_notes_create(self, req):
        mod, rid = self.note_parent(req)
        results, ok = [], 0
        for i, item in enumerate(self.note_items(req, 100)):
            e = self.note_problem(i, item, True)
            if e:
                results.append(e)
                continue
            n = self.note_add(mod, rid, item.get("Note_Title"), item["Note_Content"],
                              self.api_user)
            results.append(self.note_success(n, "record added"))
            ok += 1
        return Reply(201 if ok == len(results) else 207 if ok else 400, {"data": results})

    def r_note_put(self, req):
        item = self.note_items(req, 1)[0]
        n = self.notes.get(req.match.group(1))
        e = self.note_problem(0, item, False)
        if e is None and (n is None or self.modules[n["module"]].live(n["parent"]) is None):
            e = {"code": "INVALID_DATA", "details": {"api_name": "id", "json_path": "$.data[0].id"},
                 "message": "the id given seems to be invalid", "status": "error"}
        if e:
            return Reply(400, {"data": [e]})
        self.note_set(n, item, self.api_user)
        return Reply(200, {"data": [self.note_success(n, "record updated")]})

    # --- control ---------------------------------------------------------------------------------
    def c_note(self, req):
        body = req.json() or {}
        mod = self.control_module(body)
        if mod.live(body.get("id")) is None:
            return Reply(404, {"error": "no record '%s'" % body.get("id")})
        n = self.note_add(mod, body["id"], body.get("title"), str(body.get("text", "")),
                          self.user_by_name(body.get("user") or "Li Wei"))
        return Reply(200, self.note_render(n))

    def c_note_edit(self, req):
        body = req.json() or {}
        n = self.notes.get(str(body.get("id")))
        if n is None:
            return Reply(404, {"error": "no note '%s'" % body.get("id")})
        self.note_set(n, {"Note_Content": str(body.get("text", ""))},
                      self.user_by_name(body.get("user") or "Li Wei"))
        return Reply(200, self.note_render(n))

    def c_notes(self, req):
        q = req.query
        return Reply(200, [self.note_render(n) for n in self.notes.values()
                           if q.get("module") in (None, n["module"])
                           and q.get("id") in (None, n["parent"])])
