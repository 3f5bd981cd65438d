"""The pipelines' Elasticsearch index templates and Kibana saved objects, checked against the
published specifications of the versions the stack pins.

Elasticsearch and Kibana cannot run on this machine, so these tests encode the rules of their
own published sources and check the asset files against them, with no network at test time:

- roles/pipelines/files/elasticsearch/<index>.json: the body of `PUT _index_template/<index>`;
- roles/pipelines/files/kibana/<index>.ndjson: a data view and a dashboard, imported with
  `POST /api/saved_objects/_import?overwrite=true`;
- docs/pipelines.md: the data contract; the documents it describes must fit the templates.

Where each rule comes from (read with the `fetch` / `read_file` tools; nothing is copied):

[ES-SPEC] elastic/elasticsearch-specification, branch 9.5,
          commit 9e6a85519c8ff55a5977e03137a661c07532a232:
          specification/indices/put_index_template/IndicesPutIndexTemplateRequest.ts,
          specification/_types/mapping/{TypeMapping,Property,core,dynamic-template}.ts,
          specification/indices/_types/IndexSettings.ts, specification/_types/common.ts.
[ES-SRC]  elastic/elasticsearch, server/src/main/java/org/elasticsearch/ (stored versions):
          cluster/metadata/MetadataCreateIndexService.java @001021135a5808cee268efa3b6a4c783fafb11fc,
          common/Strings.java @02bb0b58ada9c7ea521d748a3188b2553399b6c1,
          cluster/metadata/MetadataIndexTemplateService.java @0026e580797931e6194813dc1e1b7df223da338f,
          action/index/IndexRequest.java @00cbb4fae97c93032bc7317108a34dd90d9f8138,
          common/time/DateFormatters.java @001daddd21900dc5c4f4693eb007736a735f1de0.
[KBN]     elastic/kibana (stored versions; the index could not say which release tag holds them):
          src/platform/plugins/shared/dashboard/server/dashboard_saved_object/
            dashboard_saved_object.ts @04698d03a6525795ce34443b20a85a3dda762d17,
            schema/v1/v1.ts @3c37204bef8a077edf1758caa45474499c2941c7,
            schema/v2/v2.ts @353fb1c25fbd734f5c95b9202fba27613b26a99c,
            schema/v3/v3.ts @1b722a55d94f32116be2e4a15137ade5a918ecbd,
            schema/v4/v4.ts @0e8fb9e753d1b3b7d98dceb6aa692270d706ab38,
            schema/v2/types.ts @86b5f4b2750e618b5cac323e9c52e5a0d3b23eae,
            migrations/migrate_extract_panel_references/dashboard_container_references.ts
              @248177f2577e12ebaadb391e66cf2d9ce523bfe0;
          src/platform/plugins/shared/data_views/
            server/saved_objects/data_views.ts @385d45e489dcf52d33373d97597e6d331f7154cb,
            server/saved_objects/index_pattern_migrations.ts @437def57ef40330062e2aac9e390313a077cb5cb,
            server/content_management/schema/v1/cm_services.ts @4d26ccd9232cd19e748ea43a45a6c908850f1ceb,
            common/types.ts @1e7a78eccc4f769073eeb169abcb7ab4aeed68a0;
          src/core/packages/saved-objects/
            server-internal/src/routes/import.ts @03527cbb6772084323f1bf8dd6970218c177f36c,
            server-internal/src/routes/utils.ts @4d16db65e60a2855eb589fad872b2b4015cbf99d,
            import-export-server-internal/src/import/lib/collect_saved_objects.ts
              @1d91b9aac055d322f9f5d3e91d8c048c8eaf3a76,
            import-export-server-internal/src/import/lib/validate_references.ts
              @19e871bb0d76392bb2552948977d908709eb181c,
            base-server-internal/src/model_version/constants.ts @9e98c9d426b3d3e6f4e1bdeea72275c9d1b94cca,
            base-server-internal/src/serialization/serializer.ts (generateRawId);
          x-pack/platform/plugins/shared/lens/
            public/datasources/form_based/loader.ts @0f6c8c97adedeb44a948ba633ef226fa3a85917a,
            public/datasources/form_based/operations/definitions/date_histogram.tsx
              @003a98c811b8439ce9a79f6958aaca4aa73a1997, .../metrics.tsx (sum, max),
            server/embeddable/references.ts @50d695cd5c05bb98452ef4972ed57907043300ee;
          the dashboard grid constant DASHBOARD_GRID_COLUMN_COUNT = 48 (dashboard common constants)
          and the ES-to-Kibana field type table of @kbn/field-types (kbn_field_types_factory.ts).
"""

from __future__ import annotations

import datetime
import json
import pathlib
import re

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
ES_DIR = ROOT / "roles" / "pipelines" / "files" / "elasticsearch"
KIBANA_DIR = ROOT / "roles" / "pipelines" / "files" / "kibana"
CONTRACT = ROOT / "docs" / "pipelines.md"

INDICES = ("events-per-minute", "events-daily")

# The versions whose specifications were read for this file. A version bump must re-read them
# (and update the citations above) before this test may pass again.
SPECS_READ_FOR = {"elasticsearch": "9.5.6", "kibana": "9.5.6"}


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------

def load_template(index):
    path = ES_DIR / (index + ".json")
    assert path.is_file(), "missing index template %s (the body of PUT _index_template/%s)" % (
        path.relative_to(ROOT), index)
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        pytest.fail("%s is not JSON: %s" % (path.relative_to(ROOT), exc))


def load_saved_objects(index):
    """The saved objects of <index>.ndjson, read the way Kibana's import route reads them.

    [KBN] routes/utils.ts createSavedObjectsStreamFromNdJson: split on '\\n', skip blank lines,
    JSON.parse every other line, drop the export summary line (it has `exportedCount`).
    """
    path = KIBANA_DIR / (index + ".ndjson")
    assert path.is_file(), "missing saved objects file %s" % path.relative_to(ROOT)
    objects = []
    for number, line in enumerate(path.read_text().split("\n"), start=1):
        if line.strip() == "":
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            pytest.fail("%s line %d is not JSON: %s" % (path.name, number, exc))
        if not isinstance(obj, dict):
            pytest.fail("%s line %d is not a JSON object" % (path.name, number))
        if "exportedCount" in obj:
            continue
        objects.append((number, obj))
    return objects


def objects_of(index, type_):
    return [obj for _, obj in load_saved_objects(index) if obj.get("type") == type_]


def one_object(index, type_):
    found = objects_of(index, type_)
    assert len(found) == 1, "%s.ndjson must hold exactly one %s object, found %d" % (
        index, type_, len(found))
    return found[0]


def pinned_tag(role, variable):
    defaults = yaml.safe_load((ROOT / "roles" / role / "defaults" / "main.yml").read_text())
    return str(defaults[variable])


# --------------------------------------------------------------------------------------------
# The data contract (docs/pipelines.md)
# --------------------------------------------------------------------------------------------

def contract_sections():
    """{index name: {"document": dict, "id_template": str}} from the contract's pipeline sections.

    A section is a `### ... pipeline` heading whose text names the default `--es-index`, shows the
    indexed document as a ```json block and gives the `_id` = `...` template.
    """
    text = CONTRACT.read_text()
    sections = {}
    for block in re.split(r"^### ", text, flags=re.MULTILINE)[1:]:
        index = re.search(r"`--es-index`.{0,60}?default\s+`([^`]+)`", block, re.DOTALL)
        if not index:
            continue
        doc = re.search(r"```json\n(.*?)```", block, re.DOTALL)
        id_template = re.search(r"`_id`\s*=\s*`([^`]+)`", block)
        assert doc and id_template, (
            "docs/pipelines.md section %r names index %s but lacks its ```json document or its "
            "`_id` = `...` template" % (block.splitlines()[0], index.group(1)))
        sections[index.group(1)] = {"document": json.loads(doc.group(1)),
                                    "id_template": id_template.group(1)}
    assert sections, "docs/pipelines.md: no pipeline section names a default `--es-index`"
    return sections


def contract_event_types():
    match = re.search(r"`event_type` is one of ((?:`[^`]+`(?:, )?)+)", CONTRACT.read_text())
    assert match, "docs/pipelines.md no longer lists the event types (`event_type` is one of ...)"
    return re.findall(r"`([^`]+)`", match.group(1))


# --------------------------------------------------------------------------------------------
# Elasticsearch rules
# --------------------------------------------------------------------------------------------

# [ES-SPEC] IndicesPutIndexTemplateRequest.ts, `body`: every key and its type.
PUT_INDEX_TEMPLATE_BODY = {
    "index_patterns": "indices",          # Indices = IndexName | IndexName[]
    "composed_of": "string_list",         # Name[]
    "template": "object",                 # IndexTemplateMapping
    "data_stream": "object",              # DataStreamVisibility
    "priority": "long",
    "version": "long",                    # VersionNumber = long
    "_meta": "object",                    # Metadata = Dictionary<string, UserDefinedValue>
    "allow_auto_create": "boolean",
    "ignore_missing_component_templates": "string_list",
    "deprecated": "boolean",
}
# [ES-SPEC] IndicesPutIndexTemplateRequest.ts, class IndexTemplateMapping.
INDEX_TEMPLATE_MAPPING = {"aliases", "mappings", "settings", "lifecycle", "data_stream_options"}
# [ES-SPEC] _types/mapping/TypeMapping.ts, class TypeMapping.
TYPE_MAPPING = {
    "all_field", "date_detection", "dynamic", "dynamic_date_formats", "dynamic_templates",
    "_field_names", "index_field", "_meta", "numeric_detection", "properties", "_routing",
    "_size", "_source", "runtime", "enabled", "subobjects", "_data_stream_timestamp",
}
# [ES-SPEC] dynamic-template.ts enum DynamicMapping; its es_quirk: true/false are JSON booleans.
DYNAMIC_MAPPING = {"strict", "runtime", "true", "false", True, False}

# [ES-SPEC] Property.ts PropertyBase, core.ts CorePropertyBase and DocValuesPropertyBase.
_PROPERTY_BASE = {"meta", "properties", "ignore_above", "dynamic", "fields", "synthetic_source_keep"}
_DOC_VALUES_BASE = _PROPERTY_BASE | {"copy_to", "store", "doc_values"}
# [ES-SPEC] core.ts NumberPropertyBase.
_NUMBER_BASE = _DOC_VALUES_BASE | {"boost", "coerce", "ignore_malformed", "index", "on_script_error",
                                   "script", "time_series_metric", "time_series_dimension"}
# [ES-SPEC] core.ts: the property classes of the field types these templates use ("type" is the
# internal variant tag of the Property union). Another type needs its class encoded here first.
PROPERTY_KEYS = {
    "date": _DOC_VALUES_BASE | {"type", "boost", "fielddata", "format", "ignore_malformed", "index",
                                "script", "on_script_error", "null_value", "precision_step",
                                "locale"},
    "keyword": _DOC_VALUES_BASE | {"type", "boost", "eager_global_ordinals", "index",
                                   "index_options", "script", "on_script_error", "normalizer",
                                   "norms", "null_value", "similarity",
                                   "split_queries_on_whitespace", "time_series_dimension"},
    "long": _NUMBER_BASE | {"type", "null_value"},
    "double": _NUMBER_BASE | {"type", "null_value"},
}

# [ES-SRC] DateFormatters.java STRICT_DATE_OPTIONAL_TIME_FORMATTER: yyyy[-MM[-dd]], then optional
# 'T' HH[:mm[:ss[.fraction(1-9)][,fraction(1-9)]]], then an optional zone or offset
# (Z, +HH:MM, or +HHmm). STRICT resolver: the calendar must be valid (checked separately).
_STRICT_DATE_OPTIONAL_TIME = re.compile(
    r"(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2}))?)?"
    r"(?:T(?:\d{2}(?::\d{2}(?::\d{2}(?:\.\d{1,9})?(?:,\d{1,9})?)?)?)?"
    r"(?:Z|[+-]\d{2}:\d{2}|[+-]\d{4})?)?")
# A Java-time pattern `yyyy-MM-dd`: four-digit year, two-digit month and day.
_YYYY_MM_DD = re.compile(r"(?P<y>\d{4})-(?P<m>\d{2})-(?P<d>\d{2})")
DATE_FORMATS = {"strict_date_optional_time": _STRICT_DATE_OPTIONAL_TIME, "yyyy-MM-dd": _YYYY_MM_DD}


def date_parses(value, fmt):
    """True when `value` parses under the ES date format `fmt` (only the formats encoded above)."""
    pattern = DATE_FORMATS[fmt]
    match = pattern.fullmatch(value)
    if not match:
        return False
    try:
        datetime.date(int(match["y"]), int(match["m"] or 1), int(match["d"] or 1))
    except ValueError:
        return False
    return True


def index_name_problems(name):
    """[ES-SRC] MetadataCreateIndexService.validateIndexOrAliasName + validateIndexName."""
    problems = []
    if not name:
        return ["must not be empty"]
    # [ES-SRC] Strings.INVALID_CHARS.
    bad = sorted(set(name) & set('\\/*?"<>| ,'))
    if bad:
        problems.append("must not contain %s" % bad)
    if "#" in name:
        problems.append("must not contain '#'")
    if ":" in name:
        problems.append("must not contain ':'")
    if name[0] in "_-+":
        problems.append("must not start with '_', '-', or '+'")
    if len(name.encode("utf-8")) > 255:  # MAX_INDEX_NAME_BYTES
        problems.append("index name is too long (> 255 bytes)")
    if name in (".", ".."):
        problems.append("must not be '.' or '..'")
    if name.lower() != name:
        problems.append("must be lowercase")
    # validateDotIndex: a dot-prefixed name is reserved for hidden and system indices.
    if name.startswith("."):
        problems.append("starts with '.', reserved for hidden and system indices")
    return problems


def template_name_problems(name, patterns):
    """[ES-SRC] MetadataIndexTemplateService.validate(name, settings, indexPatterns, aliases)."""
    problems = []
    for char in " ,#*":
        if char in name:
            problems.append("name must not contain %r" % char)
    if name.startswith("_"):
        problems.append("name must not start with '_'")
    if name.lower() != name:
        problems.append("name must be lower cased")
    for pattern in patterns:
        for char in " ,#:":
            if char in pattern:
                problems.append("index_pattern [%s] must not contain %r" % (pattern, char))
        if pattern.startswith("_"):
            problems.append("index_pattern [%s] must not start with '_'" % pattern)
        # Strings.validFileNameExcludingAstrix
        bad = sorted(set(pattern) & set('\\/?"<>| ,'))
        if bad:
            problems.append("index_pattern [%s] must not contain %s" % (pattern, bad))
    return problems


def es_pattern_matches(pattern, name):
    """Elasticsearch's simple match: `*` is the only wildcard."""
    return re.fullmatch(".*".join(re.escape(part) for part in pattern.split("*")), name) is not None


def patterns_intersect(p, q):
    """True when some name matches both `*`-patterns (a walk over the product of the two)."""
    seen, todo = set(), [(0, 0)]
    while todo:
        i, j = todo.pop()
        if (i, j) in seen:
            continue
        seen.add((i, j))
        if i == len(p) and j == len(q):
            return True
        if i < len(p) and p[i] == "*":
            todo.append((i + 1, j))
        if j < len(q) and q[j] == "*":
            todo.append((i, j + 1))
        if i < len(p) and j < len(q):
            if p[i] == "*" and q[j] != "*":
                todo.append((i, j + 1))
            elif q[j] == "*" and p[i] != "*":
                todo.append((i + 1, j))
            elif p[i] == q[j] != "*":
                todo.append((i + 1, j + 1))
    return False


def flat_settings(settings, prefix=""):
    """Index settings with nested objects flattened and the optional `index.` prefix removed."""
    flat = {}
    for key, value in settings.items():
        full = prefix + key
        if isinstance(value, dict):
            flat.update(flat_settings(value, full + "."))
        else:
            flat[full[len("index."):] if full.startswith("index.") else full] = value
    return flat


def type_problems(value, kind):
    if kind == "indices":
        ok = isinstance(value, str) or (isinstance(value, list) and value
                                        and all(isinstance(v, str) for v in value))
    elif kind == "string_list":
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
    elif kind == "object":
        ok = isinstance(value, dict)
    elif kind == "long":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind == "boolean":
        ok = isinstance(value, bool)
    else:
        raise AssertionError("unknown kind %s" % kind)
    return [] if ok else ["is %r, expected %s" % (value, kind)]


def template_spec_problems(body):
    problems = []
    for key, value in body.items():
        if key not in PUT_INDEX_TEMPLATE_BODY:
            problems.append("body key %r is not in IndicesPutIndexTemplateRequest" % key)
            continue
        problems += ["%s %s" % (key, p) for p in type_problems(value, PUT_INDEX_TEMPLATE_BODY[key])]
    if isinstance(body.get("priority"), int) and body["priority"] < 0:
        problems.append("priority must not be negative")
    template = body.get("template", {})
    for key in template:
        if key not in INDEX_TEMPLATE_MAPPING:
            problems.append("template key %r is not in IndexTemplateMapping" % key)
    mappings = template.get("mappings", {})
    for key in mappings:
        if key not in TYPE_MAPPING:
            problems.append("mappings key %r is not in TypeMapping" % key)
    if "dynamic" in mappings and mappings["dynamic"] not in DYNAMIC_MAPPING:
        problems.append("mappings.dynamic %r is not a DynamicMapping" % (mappings["dynamic"],))
    for field, prop in mappings.get("properties", {}).items():
        if not isinstance(prop, dict):
            problems.append("property %s is not an object" % field)
            continue
        kind = prop.get("type", "object")  # Property: internal tag 'type', default 'object'
        if kind not in PROPERTY_KEYS:
            problems.append("property %s has type %r, whose rules are not encoded here (core.ts)"
                            % (field, kind))
            continue
        for key in prop:
            if key not in PROPERTY_KEYS[kind]:
                problems.append("property %s: %r is not a key of the %s property class"
                                % (field, key, kind))
        if kind == "date":
            fmt = prop.get("format")
            if fmt not in DATE_FORMATS:
                problems.append("date property %s: format %r is not one whose grammar is encoded "
                                "here (%s)" % (field, fmt, sorted(DATE_FORMATS)))
    settings = flat_settings(template.get("settings", {}))
    for key in ("number_of_shards", "number_of_replicas"):
        if key in settings:  # IndexSettings: integer | string
            value = settings[key]
            if isinstance(value, bool) or not isinstance(value, (int, str)) \
                    or not str(value).isdigit():
                problems.append("settings.%s %r is not a non-negative integer" % (key, value))
    if "number_of_shards" in settings and str(settings["number_of_shards"]) == "0":
        problems.append("settings.number_of_shards must be at least 1")
    return problems


def expected_es_type(value):
    """The mapping type a contract value must have: ints long, floats double, dates date."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "long"
    if isinstance(value, float):
        return "double"
    if isinstance(value, str):
        looks_like_date = re.fullmatch(r"\d{4}-\d{2}-\d{2}(T.*)?", value)
        return "date" if looks_like_date else "keyword"
    return type(value).__name__


def document_id(template, document):
    """The `_id` the contract's template gives for `document` (placeholders are `<field>` or
    `<field in epoch milliseconds>`)."""
    def substitute(match):
        placeholder = match.group(1)
        epoch = re.fullmatch(r"(\w+) in epoch milliseconds", placeholder)
        field = epoch.group(1) if epoch else placeholder
        assert field in document, "_id template %r names %r, not a field of the document %r" % (
            template, field, document)
        if not epoch:
            return str(document[field])
        instant = datetime.datetime.fromisoformat(document[field].replace("Z", "+00:00"))
        return str(int(instant.timestamp() * 1000))
    return re.sub(r"<([^>]+)>", substitute, template)


# --------------------------------------------------------------------------------------------
# Kibana rules
# --------------------------------------------------------------------------------------------

STRING, BOOLEAN, NUMBER = "string", "boolean", "number"


def obj(fields, unknowns="forbid"):
    """A @kbn/config-schema object: {name: (required, schema)}; unknown keys forbidden by default."""
    return {"fields": fields, "unknowns": unknowns}


# [KBN] dashboard schema/v1/v1.ts dashboardAttributesSchema (unknowns: 'forbid'). Model versions
# 2-4 (v2.ts controlGroupInput.showApplySelections, v3.ts sections, v4.ts projectRouting) only add
# optional keys and relax to unknowns 'ignore', so attributes valid here are valid for all of them.
DASHBOARD_ATTRIBUTES_V1 = obj({
    "title": (True, STRING),
    "description": (False, STRING),  # defaultValue ''
    "kibanaSavedObjectMeta": (False, obj({"searchSourceJSON": (False, STRING)})),
    "timeRestore": (False, BOOLEAN),
    "timeFrom": (False, STRING),
    "timeTo": (False, STRING),
    "refreshInterval": (False, obj({"pause": (True, BOOLEAN), "value": (True, NUMBER),
                                    "display": (False, STRING), "section": (False, NUMBER)})),
    "controlGroupInput": (False, obj({"panelsJSON": (False, STRING),
                                      "controlStyle": (False, STRING),
                                      "chainingSystem": (False, STRING),
                                      "ignoreParentSettingsJSON": (False, STRING)},
                                     unknowns="ignore")),
    "panelsJSON": (False, STRING),
    "optionsJSON": (False, STRING),
    "hits": (False, NUMBER),
    "version": (False, NUMBER),
})

# [KBN] data_views common/types.ts DataViewAttributes (the stored form: JSON-encoded strings) and
# content_management/schema/v1/cm_services.ts dataViewAttributesSchema (unknowns: 'forbid').
DATA_VIEW_ATTRIBUTES = obj({
    "title": (True, STRING),
    "fields": (False, STRING),
    "type": (False, STRING),
    "typeMeta": (False, STRING),
    "timeFieldName": (False, STRING),
    "sourceFilters": (False, STRING),
    "fieldFormatMap": (False, STRING),
    "fieldAttrs": (False, STRING),
    "runtimeFieldMap": (False, STRING),
    "allowNoIndex": (False, BOOLEAN),
    "name": (False, STRING),
    "allowHidden": (False, BOOLEAN),
})

# [KBN] schema/v2/types.ts SavedDashboardPanel; gridData from schema/v3/v3.ts gridDataSchema.
PANEL = obj({
    "embeddableConfig": (True, "object"),
    "type": (True, STRING),
    "gridData": (True, obj({"x": (True, NUMBER), "y": (True, NUMBER), "w": (True, NUMBER),
                            "h": (True, NUMBER), "i": (True, STRING),
                            "sectionId": (False, STRING)})),
    "panelIndex": (True, STRING),
    "version": (False, STRING),
    "id": (False, STRING),
    "panelRefName": (False, STRING),
    "title": (False, STRING),
})
DASHBOARD_GRID_COLUMN_COUNT = 48

# Keys of a saved object in an import file: what collect_saved_objects.ts and
# create_saved_objects.ts read (version and originId are accepted and handled there).
SAVED_OBJECT_KEYS = {"type", "id", "attributes", "references", "coreMigrationVersion",
                     "typeMigrationVersion", "migrationVersion", "managed", "originId", "version"}

# [KBN] import/lib/validate_references.ts REF_TYPES_TO_VALIDATE: a missing reference of these types
# fails the import of the referencing object (missing_references).
VALIDATED_REFERENCE_TYPES = {"index-pattern", "search"}

# [KBN] lens form_based/loader.ts getLayerReferenceName.
LAYER_REFERENCE = "indexpattern-datasource-layer-%s"

# [KBN] @kbn/field-types: ES field types behind Kibana's 'string', 'number' and 'date'.
KIBANA_FIELD_TYPE = {"keyword": "string", "long": "number", "double": "number", "date": "date"}
# [KBN] lens operations: date_histogram needs a 'date' field (date_histogram.tsx
# getPossibleOperationForField); sum works on numbers, max also on dates (metrics.tsx,
# supportsDate); terms buckets strings, numbers and dates.
LENS_OPERATION_FIELD_TYPES = {
    "date_histogram": {"date"},
    "terms": {"string", "number", "date"},
    "sum": {"number"}, "average": {"number"}, "median": {"number"},
    "min": {"number", "date"}, "max": {"number", "date"},
}


def schema_problems(value, schema, path):
    if schema == STRING:
        return [] if isinstance(value, str) else ["%s: %r is not a string" % (path, value)]
    if schema == BOOLEAN:
        return [] if isinstance(value, bool) else ["%s: %r is not a boolean" % (path, value)]
    if schema == NUMBER:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return [] if ok else ["%s: %r is not a number" % (path, value)]
    if schema == "object":
        return [] if isinstance(value, dict) else ["%s: %r is not an object" % (path, value)]
    if not isinstance(value, dict):
        return ["%s: %r is not an object" % (path, value)]
    problems = []
    for name, (required, sub) in schema["fields"].items():
        if name in value:
            problems += schema_problems(value[name], sub, "%s.%s" % (path, name))
        elif required:
            problems.append("%s.%s is required" % (path, name))
    if schema["unknowns"] == "forbid":
        for name in value:
            if name not in schema["fields"]:
                problems.append("%s.%s is not allowed (unknowns: forbid)" % (path, name))
    return problems


def semver(text):
    match = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)", str(text))
    assert match, "%r is not a MAJOR.MINOR.PATCH version" % (text,)
    return tuple(int(part) for part in match.groups())


def dashboard_panels(dashboard):
    try:
        panels = json.loads(dashboard["attributes"]["panelsJSON"])
    except (KeyError, json.JSONDecodeError) as exc:
        pytest.fail("dashboard %s: panelsJSON is missing or not JSON (%s)" % (dashboard["id"], exc))
    assert isinstance(panels, list), "dashboard %s: panelsJSON is not a JSON array" % dashboard["id"]
    return panels


def lens_layers(panel):
    """{layer id: layer} of a by-value Lens panel's form-based datasource."""
    state = panel["embeddableConfig"]["attributes"]["state"]
    return state["datasourceStates"]["formBased"]["layers"]


def mapping_of(index):
    return load_template(index)["template"]["mappings"]["properties"]


# --------------------------------------------------------------------------------------------
# Tests: versions and the contract
# --------------------------------------------------------------------------------------------

def test_pinned_versions_are_the_ones_whose_specs_were_read():
    pinned = {"elasticsearch": pinned_tag("elasticsearch", "elasticsearch_image_tag"),
              "kibana": pinned_tag("kibana", "kibana_image_tag")}
    assert pinned == SPECS_READ_FOR, (
        "the stack now pins %s, but tests/pipelines/test_published_specs.py encodes the specs of "
        "%s: re-read the Elasticsearch specification and the Kibana saved object types of the new "
        "version, update the rules and citations, then SPECS_READ_FOR" % (pinned, SPECS_READ_FOR))


def test_contract_indices_have_assets():
    assert sorted(contract_sections()) == sorted(INDICES), (
        "docs/pipelines.md names the indices %s; this test and the assets cover %s"
        % (sorted(contract_sections()), sorted(INDICES)))


# --------------------------------------------------------------------------------------------
# Tests: Elasticsearch index templates
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("index", INDICES)
def test_index_name_is_a_valid_elasticsearch_index_name(index):
    assert index_name_problems(index) == []


@pytest.mark.parametrize("index", INDICES)
def test_template_body_follows_put_index_template_spec(index):
    assert template_spec_problems(load_template(index)) == []


@pytest.mark.parametrize("index", INDICES)
def test_template_name_and_patterns_are_valid_and_match_the_index(index):
    body = load_template(index)
    patterns = body["index_patterns"]
    patterns = [patterns] if isinstance(patterns, str) else patterns
    assert template_name_problems(index, patterns) == []
    # Exactly the index, or the index name followed by a wildcard: nothing broader.
    assert all(p in (index, index + "*") for p in patterns), (
        "%s: index_patterns %s must be %r or %r" % (index, patterns, index, index + "*"))
    assert any(es_pattern_matches(p, index) for p in patterns)


def test_templates_do_not_overlap_at_the_same_priority():
    # [ES-SPEC] IndicesPutIndexTemplateRequest.ts: overlapping index patterns at the same priority
    # are rejected when the second template is created.
    bodies = {index: load_template(index) for index in INDICES}
    for a in INDICES:
        for b in INDICES:
            if a >= b or bodies[a].get("priority", 0) != bodies[b].get("priority", 0):
                continue
            for p in bodies[a]["index_patterns"]:
                for q in bodies[b]["index_patterns"]:
                    assert not patterns_intersect(p, q), (
                        "templates %s and %s overlap (%s, %s) at the same priority" % (a, b, p, q))


@pytest.mark.parametrize("index", INDICES)
def test_template_is_production_shaped(index):
    body = load_template(index)
    settings = flat_settings(body["template"].get("settings", {}))
    assert str(settings.get("number_of_replicas", "")) != "0", (
        "%s: number_of_replicas 0 loses data with a node; leave it out (cluster default)" % index)
    # Documents are overwritten by _id, which data streams refuse (they take op_type create only:
    # https://elastic.co/docs/manage-data/data-store/data-streams/use-data-stream).
    assert "data_stream" not in body, "%s: the sinks overwrite by _id; no data stream" % index
    assert body["template"]["mappings"].get("dynamic") == "strict", (
        "%s: dynamic must be strict, so a document off the contract is rejected" % index)


@pytest.mark.parametrize("index", INDICES)
def test_contract_documents_are_fully_mapped(index):
    document = contract_sections()[index]["document"]
    properties = mapping_of(index)
    problems = []
    for field, value in document.items():
        expected = expected_es_type(value)
        prop = properties.get(field)
        if prop is None:
            problems.append("%s is in the contract but not mapped (dynamic strict rejects it)"
                            % field)
            continue
        if prop.get("type") != expected:
            problems.append("%s is mapped as %s; the contract's value %r needs %s"
                            % (field, prop.get("type"), value, expected))
        elif expected == "date" and prop.get("format") not in DATE_FORMATS:
            problems.append("%s: date format %r has no grammar encoded here" % (
                field, prop.get("format")))
        elif expected == "date" and not date_parses(value, prop["format"]):
            problems.append("%s: %r does not parse with format %s" % (field, value, prop["format"]))
    for field in properties:
        if field not in document:
            problems.append("%s is mapped but not in the contract's document" % field)
    assert problems == [], "%s vs docs/pipelines.md: %s" % (index, problems)


@pytest.mark.parametrize("index", INDICES)
def test_contract_document_ids_are_valid_elasticsearch_ids(index):
    section = contract_sections()[index]
    date_fields = [f for f, p in mapping_of(index).items() if p.get("type") == "date"]
    ids = {}
    for event_type in contract_event_types():
        for stamp in ("2026-12-01T15:00:00.000Z", "2026-12-02T15:01:00.000Z",
                      "9999-12-31T23:59:00.000Z"):
            document = dict(section["document"], event_type=event_type)
            for field in date_fields:
                fmt = mapping_of(index)[field].get("format")
                document[field] = stamp[:10] if fmt == "yyyy-MM-dd" else stamp
            doc_id = document_id(section["id_template"], document)
            # [ES-SRC] IndexRequest.MAX_DOCUMENT_ID_LENGTH_IN_BYTES = 512 (validateDocIdLength);
            # an empty _id is refused as well.
            assert doc_id and len(doc_id.encode("utf-8")) <= 512, doc_id
            ids[(event_type, stamp)] = doc_id
    # One id per (event_type, time key): a replay overwrites instead of adding, and two keys
    # never share a document.
    assert len(set(ids.values())) == len(ids), "the _id template gives colliding ids: %s" % ids


# --------------------------------------------------------------------------------------------
# Tests: Kibana saved objects
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("index", INDICES)
def test_every_line_is_an_importable_saved_object(index):
    path = KIBANA_DIR / (index + ".ndjson")
    # [KBN] routes/import.ts: any other file extension is a 400 "Invalid file extension".
    assert path.suffix == ".ndjson"
    objects = load_saved_objects(index)
    assert objects, "%s holds no saved objects" % path.name
    problems, seen = [], set()
    for number, saved in objects:
        where = "%s line %d" % (path.name, number)
        for key in ("type", "id"):
            if not isinstance(saved.get(key), str) or not saved.get(key):
                problems.append("%s: %s must be a non-empty string" % (where, key))
        if not isinstance(saved.get("attributes"), dict):
            problems.append("%s: attributes must be an object" % where)
        for key in saved:
            if key not in SAVED_OBJECT_KEYS:
                problems.append("%s: unknown saved object key %r" % (where, key))
        references = saved.get("references", [])
        if not isinstance(references, list) or not all(
                isinstance(r, dict) and set(r) == {"name", "type", "id"}
                and all(isinstance(v, str) and v for v in r.values()) for r in references):
            problems.append("%s: references must be a list of {name, type, id} strings" % where)
        # [KBN] collect_saved_objects.ts: the same type/id twice fails the whole import.
        key = (saved.get("type"), saved.get("id"))
        if key in seen:
            problems.append("%s: %s:%s appears twice" % (where, *key))
        seen.add(key)
        # [KBN] importableAndExportable types this file may use (data_views.ts, dashboard type).
        if saved.get("type") not in ("index-pattern", "dashboard"):
            problems.append("%s: type %r is not expected here" % (where, saved.get("type")))
    assert problems == []


@pytest.mark.parametrize("index", INDICES)
def test_saved_object_ids_are_stable_and_valid(index):
    for _, saved in load_saved_objects(index):
        # Fixed, readable ids so that _import?overwrite=true replaces the same objects each run.
        assert re.fullmatch(r"bigdata-stack-[a-z0-9]+(-[a-z0-9]+)*", saved["id"]), saved["id"]
        # [KBN] serializer.ts generateRawId: the Elasticsearch _id of a multi-namespace object is
        # `<type>:<id>`, so it must fit [ES-SRC] IndexRequest's 512-byte limit.
        assert len(("%s:%s" % (saved["type"], saved["id"])).encode("utf-8")) <= 512


@pytest.mark.parametrize("index", INDICES)
def test_data_view_follows_the_data_view_schema_and_the_template(index):
    view = one_object(index, "index-pattern")
    attributes = view["attributes"]
    assert schema_problems(attributes, DATA_VIEW_ATTRIBUTES, "attributes") == []
    assert attributes["title"] == index, "the data view must read the index %s" % index
    time_field = attributes.get("timeFieldName")
    prop = mapping_of(index).get(time_field)
    assert prop and prop["type"] == "date", (
        "timeFieldName %r is not a date field of the %s template" % (time_field, index))
    # The data view is imported before the pipelines create the index.
    assert attributes.get("allowNoIndex") is True


@pytest.mark.parametrize("index", INDICES)
def test_dashboard_follows_the_dashboard_schema(index):
    dashboard = one_object(index, "dashboard")
    attributes = dashboard["attributes"]
    assert schema_problems(attributes, DASHBOARD_ATTRIBUTES_V1, "attributes") == []
    assert attributes["title"].strip()
    # The JSON-in-a-string attributes must parse to the shapes the dashboard app reads.
    assert isinstance(json.loads(attributes.get("optionsJSON", "{}")), dict)
    search = attributes.get("kibanaSavedObjectMeta", {}).get("searchSourceJSON", "{}")
    assert isinstance(json.loads(search), dict)
    problems = []
    for n, panel in enumerate(dashboard_panels(dashboard)):
        problems += schema_problems(panel, PANEL, "panelsJSON[%d]" % n)
    assert problems == []


@pytest.mark.parametrize("index", INDICES)
def test_migration_versions_keep_the_objects_as_written(index):
    kibana = semver(pinned_tag("kibana", "kibana_image_tag"))
    for _, saved in load_saved_objects(index):
        where = "%s %s" % (saved["type"], saved["id"])
        # [KBN] collect_saved_objects.ts: without a migration version the importer sets
        # typeMigrationVersion '' and every migration of the type runs on the object.
        assert saved.get("typeMigrationVersion"), "%s: set typeMigrationVersion" % where
        version = semver(saved["typeMigrationVersion"])
        # [KBN] routes/import.ts: objects import only into the same or a newer Kibana.
        assert semver(saved.get("coreMigrationVersion", "0.0.0")) <= kibana, where
        if saved["type"] == "index-pattern":
            # index_pattern_migrations.ts: the 7.11.0 migration resets allowNoIndex (except for
            # logs-*/metrics-*); 8.0.0 is the type's convertToMultiNamespaceTypeVersion
            # (data_views.ts), the newest version its definition names.
            assert (7, 11, 0) <= version <= (8, 0, 0), where
        else:
            # model_version/constants.ts: model version N is the virtual version 10.N.0. The
            # dashboard's model version 1 (dashboard_saved_object.ts) is the one whose create
            # schema this file checks; older versions would rerun 7.x/8.x panel migrations.
            assert version == (10, 1, 0), where


@pytest.mark.parametrize("index", INDICES)
def test_dashboard_references_resolve_within_the_file(index):
    objects = {(o["type"], o["id"]): o for _, o in load_saved_objects(index)}
    dashboard = one_object(index, "dashboard")
    references = dashboard.get("references", [])
    problems, used = [], set()
    for ref in references:
        if (ref["type"], ref["id"]) not in objects:
            problems.append("reference %s -> %s:%s is not in the file" % (
                ref["name"], ref["type"], ref["id"]))
    for panel in dashboard_panels(dashboard):
        pid = panel["panelIndex"]
        # [KBN] dashboard_container_references.ts: a panel's references are the dashboard's
        # references named `<panelIndex>:<name>` (all references when none has that prefix).
        own = {r["name"][len(pid) + 1:]: r for r in references if r["name"].startswith(pid + ":")}
        panel_refs = own or {r["name"]: r for r in references}
        if "panelRefName" in panel:
            ref = panel_refs.get(panel["panelRefName"])
            if ref is None:
                problems.append("panel %s: panelRefName %s has no reference" % (
                    pid, panel["panelRefName"]))
            else:
                used.add(ref["name"] if not own else pid + ":" + panel["panelRefName"])
        attributes = panel["embeddableConfig"].get("attributes")
        if attributes is None:
            continue
        if panel["type"] != "lens":
            problems.append("panel %s: by-value panels here are lens panels" % pid)
            continue
        inner = {r["name"]: r for r in attributes.get("references", [])}
        for layer_id in lens_layers(panel):
            name = LAYER_REFERENCE % layer_id
            # [KBN] loader.ts injectReferences: a layer without its reference is dropped.
            # [KBN] lens server/embeddable/references.ts: the dashboard's panel reference of the
            # same name supplies the id on load, so both must exist and agree.
            outer = own.get(name)
            if name not in inner or outer is None:
                problems.append("panel %s layer %s: needs reference %s in the Lens attributes and "
                                "%s:%s on the dashboard" % (pid, layer_id, name, pid, name))
                continue
            used.add(pid + ":" + name)
            if (inner[name]["type"], inner[name]["id"]) != (outer["type"], outer["id"]):
                problems.append("panel %s layer %s: Lens and dashboard references differ"
                                % (pid, layer_id))
            if outer["type"] != "index-pattern" or (outer["type"], outer["id"]) not in objects:
                problems.append("panel %s layer %s: %s:%s is not a data view in the file"
                                % (pid, layer_id, outer["type"], outer["id"]))
    for ref in references:
        if ref["name"] not in used:
            problems.append("dashboard reference %s is used by no panel" % ref["name"])
    # [KBN] validate_references.ts: data view and search references must exist at import.
    for _, saved in load_saved_objects(index):
        for ref in saved.get("references", []):
            if ref["type"] in VALIDATED_REFERENCE_TYPES and (ref["type"], ref["id"]) not in objects:
                problems.append("%s %s: %s:%s would be a missing_references error" % (
                    saved["type"], saved["id"], ref["type"], ref["id"]))
    assert problems == []


@pytest.mark.parametrize("index", INDICES)
def test_dashboard_grid_and_panel_ids(index):
    panels = dashboard_panels(one_object(index, "dashboard"))
    ids = [p["panelIndex"] for p in panels]
    assert len(set(ids)) == len(ids), "panelIndex values repeat: %s" % ids
    for panel in panels:
        grid = panel["gridData"]
        assert grid["i"] == panel["panelIndex"], panel["panelIndex"]
        assert grid["x"] >= 0 and grid["y"] >= 0 and grid["w"] >= 1 and grid["h"] >= 1
        assert grid["x"] + grid["w"] <= DASHBOARD_GRID_COLUMN_COUNT, panel["panelIndex"]


@pytest.mark.parametrize("index", INDICES)
def test_lens_panels_use_mapped_fields_and_their_own_columns(index):
    view = one_object(index, "index-pattern")
    properties = mapping_of(index)
    problems = []
    for panel in dashboard_panels(one_object(index, "dashboard")):
        if panel["type"] != "lens":
            continue
        pid = panel["panelIndex"]
        attributes = panel["embeddableConfig"]["attributes"]
        layers = lens_layers(panel)
        for layer_id, layer in layers.items():
            columns = layer["columns"]
            if sorted(layer["columnOrder"]) != sorted(columns):
                problems.append("panel %s: columnOrder %s is not the columns %s"
                                % (pid, layer["columnOrder"], sorted(columns)))
            for column_id, column in columns.items():
                operation = column.get("operationType")
                if operation == "count":
                    continue
                field = column.get("sourceField")
                es_type = properties.get(field, {}).get("type")
                kibana_type = KIBANA_FIELD_TYPE.get(es_type)
                if operation not in LENS_OPERATION_FIELD_TYPES:
                    problems.append("panel %s column %s: operation %r is not encoded here"
                                    % (pid, column_id, operation))
                elif kibana_type not in LENS_OPERATION_FIELD_TYPES[operation]:
                    problems.append("panel %s column %s: %s on %r (%s) is not possible"
                                    % (pid, column_id, operation, field, es_type))
                if column.get("isBucketed") != (operation in ("date_histogram", "terms")):
                    problems.append("panel %s column %s: isBucketed is wrong" % (pid, column_id))
                if operation == "date_histogram" and field != view["attributes"]["timeFieldName"]:
                    problems.append("panel %s column %s: histogram off the data view's time field"
                                    % (pid, column_id))
        visualization = attributes["state"]["visualization"]
        if attributes["visualizationType"] == "lnsXY":
            for vis_layer in visualization["layers"]:
                columns = layers.get(vis_layer["layerId"], {}).get("columns", {})
                wanted = ([vis_layer.get("xAccessor"), vis_layer.get("splitAccessor")]
                          + vis_layer.get("accessors", []))
                for accessor in filter(None, wanted):
                    if accessor not in columns:
                        problems.append("panel %s: accessor %s is not a column of layer %s"
                                        % (pid, accessor, vis_layer["layerId"]))
        elif attributes["visualizationType"] == "lnsDatatable":
            columns = layers.get(visualization["layerId"], {}).get("columns", {})
            for entry in visualization["columns"]:
                if entry["columnId"] not in columns:
                    problems.append("panel %s: table column %s is not in layer %s"
                                    % (pid, entry["columnId"], visualization["layerId"]))
        else:
            problems.append("panel %s: visualization %s is not checked here"
                            % (pid, attributes["visualizationType"]))
    assert problems == []


def _operations(panel):
    """(visualizationType, {(operationType, sourceField)}) of a Lens panel."""
    attributes = panel["embeddableConfig"]["attributes"]
    ops = {(c["operationType"], c.get("sourceField"))
           for layer in lens_layers(panel).values() for c in layer["columns"].values()}
    return attributes["visualizationType"], ops


@pytest.mark.parametrize("index", INDICES)
def test_dashboard_has_the_promised_panels(index):
    time_field = one_object(index, "index-pattern")["attributes"]["timeFieldName"]
    panels = [_operations(p) for p in dashboard_panels(one_object(index, "dashboard"))
              if p["type"] == "lens"]
    histogram = ("date_histogram", time_field)
    wanted = {
        "events over time by event_type": ("lnsXY", {histogram, ("terms", "event_type"),
                                                     ("sum", "events")}),
        "amount over time": ("lnsXY", {histogram, ("sum", "amount")}),
        "table of totals": ("lnsDatatable", {("terms", "event_type"), ("sum", "events"),
                                             ("sum", "amount")}),
    }
    missing = [name for name, (vis, ops) in wanted.items()
               if not any(v == vis and ops <= have for v, have in panels)]
    assert missing == [], "%s dashboard lacks: %s" % (index, missing)
