"""Go text/template subset behind `--format`: parsing, evaluation, printing, tables."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from workbench.commands.template import (
    TabWriter,
    Template,
    TemplateError,
    compile_template,
    field_header,
    is_table,
    render,
    render_rows,
    render_table,
)

DATA = {
    "Id": "3f2a1b4c5d6e7f80",
    "Name": "web",
    "State": {"Status": "running", "Pid": 4242, "Running": True, "ExitCode": 0},
    "Config": {"Env": ["PATH=/bin", "TERM=xterm"], "Labels": {"b": "2", "a": "1"}, "Cmd": None},
    "Mounts": [],
    "Size": 1.5,
    "Count": 3,
}


# -- text, actions, fields, variables ----------------------------------------------------------
@pytest.mark.parametrize("fmt, expected", [
    ("plain text", "plain text"),
    ("", ""),
    ("{{.Id}}", "3f2a1b4c5d6e7f80"),
    ("{{ .Name }}", "web"),
    ("{{.State.Status}}/{{.State.Pid}}", "running/4242"),
    ("{{.State.Running}}", "true"),
    ("{{.Config.Env}}", "[PATH=/bin TERM=xterm]"),
    ("{{.Config.Labels}}", "map[a:1 b:2]"),
    ("{{.Config.Cmd}}", "<nil>"),
    ("{{.Mounts}}", "[]"),
    ("{{.Nope}}", "<no value>"),
    ("{{.Nope.Deeper}}", "<no value>"),
    ("{{.State}}", "map[ExitCode:0 Pid:4242 Running:true Status:running]"),
    ("{{$.Name}}", "web"),
    ("{{with .State}}{{$.Name}}:{{.Status}}{{end}}", "web:running"),
    ("{{$x := .Name}}[{{$x}}]", "[web]"),
    ("{{$x := 1}}{{$x = 2}}{{$x}}", "2"),
    ("{{$s := .State}}{{$s.Pid}}", "4242"),
    ("{{(.State).Status}}", "running"),
    ("{{(index .Config.Env 1)}}", "TERM=xterm"),
    ("a{{/* a comment */}}b", "ab"),
    ("a {{- /* trimmed */ -}} b", "ab"),
])
def test_fields_variables_and_text(fmt, expected):
    assert render(fmt, DATA) == expected


@pytest.mark.parametrize("fmt, expected", [
    ("a  {{- .Name}}", "aweb"),
    ("{{.Name -}}  \n\t b", "webb"),
    ("x \n {{- .Name -}} \n y", "xweby"),
    ("{{- .Name -}}", "web"),
    ("{{-3}}", "-3"),            # no space after '-': a negative number, not a trim marker
    ("{{3 -}} z", "3z"),
])
def test_trim_markers(fmt, expected):
    assert render(fmt, DATA) == expected


def test_typed_backslash_escapes_become_tab_and_newline():
    assert render(r"{{.Name}}\t{{.Id}}\n", DATA) == "web\t3f2a1b4c5d6e7f80\n"
    # inside a string literal Go's own escapes apply
    assert render(r'{{printf "%s\t|" .Name}}', DATA) == "web\t|"
    assert compile_template(r"a\tb", escapes=False).render({}) == r"a\tb"


# -- literals ----------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt, expected", [
    ('{{"a\\tb\\"c\\u00e9\\x41"}}', 'a\tb"céA'),
    ("{{`raw \\n text`}}", "raw \\n text"),
    ("{{'a'}}", "97"),
    ("{{42}} {{-7}} {{0x1F}} {{017}} {{0b101}} {{1_000}}", "42 -7 31 15 5 1000"),
    ("{{1.5}} {{1e3}} {{.5}}", "1.5 1000 0.5"),
    ("{{true}} {{false}}", "true false"),
    ("{{printf \"%v\" nil}}", "<nil>"),
])
def test_literals(fmt, expected):
    assert render(fmt, {}) == expected


# -- value printing ----------------------------------------------------------------------------
@dataclass
class _Port:
    HostPort: int
    Protocol: str


class _Box:
    def __init__(self):
        self.Name = "box"
        self._secret = "hidden"

    def Greet(self, who):
        return f"hi {who}"

    def Fail(self):
        raise RuntimeError("boom")


@pytest.mark.parametrize("value, expected", [
    (True, "true"),
    (False, "false"),
    (None, "<nil>"),
    (0, "0"),
    (3.0, "3"),
    (2.5, "2.5"),
    (1e6, "1e+06"),
    (123456.0, "123456"),
    (1234567.0, "1.234567e+06"),
    (0.0001, "0.0001"),
    (0.00001, "1e-05"),
    (-0.5, "-0.5"),
    (float("inf"), "+Inf"),
    (["a", 1, None, True], "[a 1 <nil> true]"),
    ({"z": 1, "a": [1, 2], "m": {"k": "v"}}, "map[a:[1 2] m:map[k:v] z:1]"),
    ({}, "map[]"),
    (_Port(8080, "tcp"), "{8080 tcp}"),
    (b"hi", "[104 105]"),
])
def test_values_print_like_go(value, expected):
    assert render("{{.V}}", {"V": value}) == expected


def test_objects_expose_attributes_and_methods():
    box = _Box()
    assert render("{{.Name}} {{.Greet \"bob\"}} {{\"amy\" | .Greet}}", box) == "box hi bob hi amy"
    with pytest.raises(TemplateError, match="can't evaluate field Missing in type _Box"):
        render("{{.Missing}}", box)
    with pytest.raises(TemplateError, match="can't evaluate field _secret"):
        render("{{._secret}}", box)
    with pytest.raises(TemplateError, match="error calling Fail: boom"):
        render("{{.Fail}}", box)


# -- functions ---------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt, expected", [
    ("{{json .State}}", '{"Status":"running","Pid":4242,"Running":true,"ExitCode":0}'),
    ("{{json .Config.Env}}", '["PATH=/bin","TERM=xterm"]'),
    ("{{json .Config.Cmd}}", "null"),
    ('{{json "<a & é>"}}', '"<a & é>"'),
    ("{{json .Size}} {{json 2.0}} {{json 1e21}}", "1.5 2 1e+21"),
    ("{{.Name | json}}", '"web"'),
    ("{{upper .Name}} {{lower \"ABC\"}} {{title \"hello big-world_x\"}}", "WEB abc Hello Big-World_x"),
    ("{{join .Config.Env \",\"}}", "PATH=/bin,TERM=xterm"),
    ("{{len .Config.Env}} {{len .Name}} {{len .Config.Labels}}", "2 3 2"),
    ("{{index .Config.Env 0}} {{index .Config.Labels \"a\"}} {{index .State \"Pid\"}}", "PATH=/bin 1 4242"),
    ("[{{index .Config.Labels \"missing\"}}]", "[]"),
    ("{{index . \"Config\" \"Labels\" \"b\"}}", "2"),
    ("{{slice .Name 1}} {{slice .Name 0 2}} {{slice .Config.Env 1 2}}", "eb we [TERM=xterm]"),
    ("{{truncate .Id 5}} {{truncate \"ab\" 5}}", "3f2a1 ab"),
    ("{{split \"a:b:c\" \":\"}} {{index (split \"a:b\" \":\") 1}}", "[a b c] b"),
    ("[{{pad .Name 1 2}}]", "[ web  ]"),
    ("{{print \"a\" 1 2 \"b\"}}", "a1 2b"),
    ("{{println \"a\" 1}}", "a 1\n"),
    ("{{contains \"eb\" .Name}} {{.Name | contains \"x\"}}", "true false"),
    ("{{hasPrefix \"we\" .Name}} {{hasSuffix \"we\" .Name}}", "true false"),
    ("[{{trim \"  x \"}}] {{replace \"e\" \"E\" .Name}}", "[x] wEb"),
    ("{{html \"<a href='x'>\"}} {{urlquery \"a b&c\"}}", "&lt;a href=&#39;x&#39;&gt; a+b%26c"),
    ("{{.Name | upper | printf \"<%s>\"}}", "<WEB>"),
    ("{{.Config.Env | len}}", "2"),
])
def test_functions(fmt, expected):
    assert render(fmt, DATA) == expected


@pytest.mark.parametrize("fmt, expected", [
    ("{{eq .Count 3}} {{eq .Count 1 2 3}} {{eq .Name \"db\"}}", "true true false"),
    ("{{ne .Count 3}} {{lt 1 2}} {{le 2 2}} {{gt \"b\" \"a\"}} {{ge 1.5 2.5}}", "false true true true false"),
    ("{{eq .Config.Cmd nil}} {{eq .Nope \"x\"}}", "true false"),
    ("{{not .Mounts}} {{not .Name}}", "true false"),
    ("{{and 1 0 2}} {{and 1 2}} {{or 0 \"\" \"x\"}} {{or 0 false}}", "0 2 x false"),
    ("{{and .Mounts .Nope.Deeper}}", "[]"),   # short-circuit: the second argument is never needed
    ("{{if and .State.Running (eq .State.Pid 4242)}}yes{{end}}", "yes"),
])
def test_comparisons_and_logic(fmt, expected):
    assert render(fmt, DATA) == expected


@pytest.mark.parametrize("fmt, args, expected", [
    ("%s|%v|%d", ["a", [1, 2], 7], "a|[1 2]|7"),
    ("%5s|%-5s|%.2s", ["ab", "ab", "abc"], "   ab|ab   |ab"),
    ("%03d|%+d|%-4d|%x|%X|%#x|%o|%b", [7, 7, 7, 255, 255, 255, 8, 5], "007|+7|7   |ff|FF|0xff|10|101"),
    ("%q|%q|%t|%c", ['say "hi"\n', "x", False, 65], '"say \\"hi\\"\\n"|"x"|false|A'),
    ("%.2f|%8.3f|%e|%g|%v", [3.14159, 2.5, 1234.5, 0.5, 2.0], "3.14|   2.500|1.234500e+03|0.5|2"),
    ("%x", ["hi"], "6869"),
    ("%T %T %T %T", ["s", 1, 1.5, [1]], "string int float64 []interface {}"),
    ("100%%", [], "100%"),
    ("%d", ["x"], "%!d(string=x)"),
    ("%s", [5], "%!s(int=5)"),
    ("%d %d", [1], "1 %!d(MISSING)"),
    ("%d", [1, "x"], "1%!(EXTRA string=x)"),
    ("%[2]s %[1]s", ["a", "b"], "b a"),
    ("%", [], "%!(NOVERB)"),
    ("%q", [["a", "b"]], '["a" "b"]'),
])
def test_printf_maps_go_verbs(fmt, args, expected):
    data = {f"A{i}": a for i, a in enumerate(args)}
    call = "printf .F" + "".join(f" .A{i}" for i in range(len(args)))
    assert render("{{" + call + "}}", {"F": fmt, **data}) == expected


# -- control structures ------------------------------------------------------------------------
@pytest.mark.parametrize("fmt, data, expected", [
    ("{{range .L}}<{{.}}>{{end}}", {"L": ["a", "b"]}, "<a><b>"),
    ("{{range $i, $e := .L}}{{$i}}={{$e}} {{end}}", {"L": ["a", "b"]}, "0=a 1=b "),
    ("{{range $e := .L}}{{$e}}{{end}}", {"L": ["a", "b"]}, "ab"),
    ("{{range $k, $v := .M}}{{$k}}:{{$v}};{{end}}", {"M": {"b": 2, "a": 1}}, "a:1;b:2;"),
    ("{{range .M}}{{.}}{{end}}", {"M": {"b": 2, "a": 1}}, "12"),
    ("{{range .L}}x{{else}}empty{{end}}", {"L": []}, "empty"),
    ("{{range .L}}x{{else}}empty{{end}}", {}, "empty"),
    ("{{range 3}}{{.}}{{end}}", {}, "012"),
    ("{{range .L}}{{if eq . 3}}{{break}}{{end}}{{.}}{{end}}", {"L": [1, 2, 3, 4]}, "12"),
    ("{{range .L}}{{if eq . 2}}{{continue}}{{end}}{{.}}{{end}}", {"L": [1, 2, 3]}, "13"),
    ("{{range .L}}{{.N}}{{$.Sep}}{{end}}", {"L": [{"N": 1}, {"N": 2}], "Sep": ","}, "1,2,"),
    ("{{range .L}}{{$x := .}}{{$x}}{{end}}", {"L": [1, 2]}, "12"),
    ("{{if .A}}a{{end}}", {"A": 0}, ""),
    ("{{if .A}}a{{else}}b{{end}}", {"A": "x"}, "a"),
    ("{{if eq .N 1}}one{{else if eq .N 2}}two{{else}}many{{end}}", {"N": 2}, "two"),
    ("{{if eq .N 1}}one{{else if eq .N 2}}two{{else}}many{{end}}", {"N": 9}, "many"),
    ("{{if $x := .N}}{{$x}}{{end}}", {"N": 5}, "5"),
    ("{{with .S}}[{{.}}]{{end}}", {"S": "v"}, "[v]"),
    ("{{with .S}}[{{.}}]{{else}}none{{end}}", {"S": ""}, "none"),
    ("{{with .A}}a{{else with .B}}b={{.}}{{end}}", {"B": 2}, "b=2"),
    ("{{with $v := .S}}{{$v}}{{end}}", {"S": "v"}, "v"),
    ('{{define "row"}}<{{.}}>{{end}}{{template "row" .N}}{{range .L}}{{template "row" .}}{{end}}',
     {"N": 0, "L": [1]}, "<0><1>"),
    ('{{block "b" .N}}[{{.}}]{{end}}', {"N": 7}, "[7]"),
    ("{{if .A}}{{range .L}}{{.}}{{end}}{{end}}", {"A": True, "L": ["x", "y"]}, "xy"),
])
def test_control_structures(fmt, data, expected):
    assert render(fmt, data) == expected


@pytest.mark.parametrize("value, truthy", [
    (0, False), (1, True), (0.0, False), ("", False), ("0", True), ([], False), ([0], True),
    ({}, False), (None, False), (False, False), (_Port(0, ""), True),
])
def test_truth_follows_go(value, truthy):
    assert render("{{if .V}}T{{else}}F{{end}}", {"V": value}) == ("T" if truthy else "F")


# -- errors ------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt, message", [
    ("{{.Name", "unclosed action"),
    ("{{.Name}", "unclosed action"),
    ("{{nope .Name}}", 'function "nope" not defined'),
    ("{{if .A}}x", "unexpected EOF"),
    ("{{end}}", "unexpected {{end}}"),
    ("{{else}}", "unexpected {{else}}"),
    ("{{}}", "missing value for command"),
    ("{{$x}}", 'undefined variable "$x"'),
    ("{{$x = 1}}", 'undefined variable "$x"'),
    ("{{range .L}}{{end}}{{$e}}", 'undefined variable "$e"'),
    ('{{"abc}}', "unterminated quoted string"),
    ("{{`abc}}", "unterminated raw quoted string"),
    ("{{3x}}", "bad number syntax"),
    ("{{08}}", "bad number syntax"),
    ('{{"\\q"}}', "unknown escape sequence"),
    ("{{@}}", "unrecognized character in action"),
    ("{{break}}", "{{break}} outside {{range}}"),
    ("{{/* open", "unclosed comment"),
    ("{{/* c */ .X}}", "comment ends before closing delimiter"),
    ("{{1 2}}", "can't give argument to non-function 1"),
    ("{{.A | 1}}", "can't give argument to non-function 1"),
    ("{{.A |}}", "missing command after |"),
    ("{{(.A}}", "unclosed left paren"),
    ("{{.A)}}", "unexpected ')'"),
    ("{{if if}}{{end}}", "unexpected <if> in command"),
    ("{{\"x\".Foo}}", "unexpected .Foo after term"),
    ("{{range .L}}{{else if .A}}{{end}}", "unexpected 'if' in {{else}}"),
    ("{{end x}}", "unexpected {{end}}"),
    ('{{if 1}}{{define "x"}}{{end}}{{end}}', "only allowed at the top level"),
    ("{{template .X}}", "needs a template name in quotes"),
])
def test_parse_errors_say_what_is_wrong(fmt, message):
    with pytest.raises(TemplateError) as exc:
        compile_template(fmt)
    assert message in str(exc.value)
    assert str(exc.value).startswith("template: format:")


@pytest.mark.parametrize("fmt, data, message", [
    ("{{.Name.Foo}}", {"Name": "web"}, "can't evaluate field Foo in type string"),
    ("{{.L.Foo}}", {"L": [1]}, "can't evaluate field Foo in type []interface {}"),
    ("{{.N.Foo}}", {"N": None}, "nil pointer evaluating interface {}.Foo"),
    ("{{.M.K 1}}", {"M": {"K": 1}}, "K is not a method but has arguments"),
    ("{{upper .N}}", {"N": 5}, "wrong type for value; expected string; got int"),
    ("{{upper .Nope}}", {}, "invalid value; expected string"),
    ("{{join .S \",\"}}", {"S": "x"}, "expected []string; got string"),
    ("{{index .L 5}}", {"L": [1]}, "error calling index: index out of range: 5"),
    ("{{index .L \"k\"}}", {"L": [1]}, "cannot index slice/array with type string"),
    ("{{index .N 0}}", {"N": 3}, "can't index item of type int"),
    ("{{len .N}}", {"N": 3}, "len of type int"),
    ("{{slice .S 2 1}}", {"S": "abc"}, "invalid slice index: 2 > 1"),
    ("{{range .S}}{{end}}", {"S": "abc"}, "range can't iterate over abc"),
    ("{{eq .N \"1\"}}", {"N": 1}, "incompatible types for comparison"),
    ("{{eq .L .L}}", {"L": [1]}, "non-comparable type"),
    ("{{lt true false}}", {}, "invalid type for comparison"),
    ("{{upper}}", {}, "wrong number of args for upper: want 1 got 0"),
    ("{{printf}}", {}, "wrong number of args for printf: want at least 1 got 0"),
    ("{{truncate .S \"2\"}}", {"S": "abc"}, "expected int; got string"),
    ("{{json .F}}", {"F": float("nan")}, "unsupported value: NaN"),
    ('{{template "nope"}}', {}, 'no such template "nope"'),
    ("{{.A | .B}}", {"A": 1, "B": 2}, "B is not a method but has arguments"),
])
def test_execution_errors_name_the_problem(fmt, data, message):
    with pytest.raises(TemplateError) as exc:
        render(fmt, data)
    text = str(exc.value)
    assert message in text
    assert text.startswith("template: format:1:") and 'executing "format" at <' in text


def test_error_position_points_at_the_failing_node():
    with pytest.raises(TemplateError) as exc:
        render("ok\n  {{.Name.Foo}}", {"Name": "x"})
    assert str(exc.value).startswith('template: format:2:4: executing "format" at <.Name.Foo>:')


def test_strict_render_rejects_missing_top_level_field_only():
    tpl = compile_template("{{.Labels.x}}|{{.Nmes}}")
    assert tpl.render({"Labels": {}}) == "<no value>|<no value>"
    with pytest.raises(TemplateError, match="can't evaluate field Nmes"):
        tpl.render({"Labels": {}}, strict=True)
    assert compile_template("{{.Labels.x}}").render({"Labels": {}}, strict=True) == "<no value>"


def test_strict_with_map_names_makes_every_other_nested_dict_a_struct():
    data = {"State": {"Status": "running"}, "Config": {"Labels": {"a": "1"}, "Annotations": None},
            "Mounts": [{"Destination": "/d"}]}
    maps = {"Labels", "Annotations"}

    def render_strict(fmt: str) -> str:
        return compile_template(fmt).render(data, strict=maps)
    assert render_strict("{{.State.Status}} {{.Config.Labels.a}} {{.Config.Labels.b}}") == "running 1 <no value>"
    assert render_strict("{{.Config.Annotations.x}}|{{json .Config.Annotations}}") == "<no value>|null"  # a nil map
    for fmt, field in (("{{.State.Nope}}", "Nope"), ("{{.Config.Nope}}", "Nope"),
                       ("{{range .Mounts}}{{.Dest}}{{end}}", "Dest")):
        with pytest.raises(TemplateError, match=f"can't evaluate field {field}: no such field"):
            render_strict(fmt)
    assert compile_template("{{.State.Nope}}").render(data, strict=True) == "<no value>"  # the root only


def test_template_error_is_a_value_error():
    assert issubclass(TemplateError, ValueError)


def test_recursive_template_is_stopped():
    with pytest.raises(TemplateError, match="maximum template depth"):
        render('{{define "r"}}{{template "r" .}}{{end}}{{template "r" .}}', {})


# -- compile once ------------------------------------------------------------------------------
def test_compiled_template_renders_many_items_and_is_cached():
    tpl = compile_template("{{.A}}-{{len .L}}")
    assert isinstance(tpl, Template)
    assert [tpl.render({"A": i, "L": [0] * i}) for i in range(3)] == ["0-0", "1-1", "2-2"]
    assert compile_template("{{.A}}-{{len .L}}") is tpl


def test_variables_do_not_leak_between_renders():
    tpl = compile_template("{{range .L}}{{$x := .}}{{end}}{{$.N}}")
    assert tpl.render({"L": [1], "N": "a"}) == "a"
    assert tpl.render({"L": [], "N": "b"}) == "b"


# -- headers and tables ------------------------------------------------------------------------
@pytest.mark.parametrize("name, header", [
    ("Names", "NAMES"), ("ID", "ID"), ("CreatedAt", "CREATED AT"), ("ImageID", "IMAGE ID"),
    ("HTTPServer", "HTTP SERVER"), ("Size", "SIZE"), ("RunningFor", "RUNNING FOR"), ("Port80", "PORT 80"),
])
def test_field_header_splits_camel_case(name, header):
    assert field_header(name) == header


@pytest.mark.parametrize("fmt, table", [
    ("table {{.ID}}", True), ("table", True), ("{{.ID}}", False), ("tablet {{.ID}}", False),
    ("json", False),
])
def test_is_table(fmt, table):
    assert is_table(fmt) is table


PS_FORMAT = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.CreatedHuman}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
PS_HEADERS = {"ID": "CONTAINER ID", "CreatedHuman": "CREATED", "Names": "NAMES"}
PS_ROWS = [
    {"ID": "3f2a1b4c5d6e", "Image": "docker.io/library/busybox:latest", "Command": "sleep 1000",
     "CreatedHuman": "2 minutes ago", "Status": "Up 2 minutes", "Ports": "", "Names": "web",
     "Labels": {"app": "shop"}, "Pid": 4242},
    {"ID": "9e8d7c6b5a41", "Image": "docker.io/library/alpine:latest", "Command": "sh",
     "CreatedHuman": "About an hour ago", "Status": "Exited (0) 5 minutes ago", "Ports": "",
     "Names": "db", "Labels": {}, "Pid": 0},
]


def test_podman_ps_table_is_aligned_like_podman():
    assert render_table(PS_FORMAT, PS_ROWS, PS_HEADERS) == (
        "CONTAINER ID  IMAGE                             COMMAND     CREATED            "
        "STATUS                    PORTS       NAMES\n"
        "3f2a1b4c5d6e  docker.io/library/busybox:latest  sleep 1000  2 minutes ago      "
        "Up 2 minutes              "             "            web\n"
        "9e8d7c6b5a41  docker.io/library/alpine:latest   sh          About an hour ago  "
        "Exited (0) 5 minutes ago  "             "            db\n"
    )


def test_table_without_rows_prints_the_header_and_noheading_drops_it():
    assert render_table("table {{.ID}}\t{{.Names}}", [], PS_HEADERS) == "CONTAINER ID  NAMES\n"
    assert render_table("table {{.ID}}\t{{.Names}}", PS_ROWS, PS_HEADERS, noheading=True) == (
        "3f2a1b4c5d6e  web\n"
        "9e8d7c6b5a41  db\n"
    )


def test_table_typed_escapes_and_derived_headers():
    out = render_table(r"table {{.ID}}\t{{.CreatedHuman}}\t{{.Pid}}", PS_ROWS)
    assert out == (
        "ID            CREATED HUMAN      PID\n"
        "3f2a1b4c5d6e  2 minutes ago      4242\n"
        "9e8d7c6b5a41  About an hour ago  0\n"
    )


def test_table_header_row_handles_functions_and_nested_fields():
    fmt = ('table {{.Names | upper}}\t{{printf "%-8s" .ID}}|\t{{json .Labels}}\t'
           '{{index .Labels "app"}}\t{{len .Labels}}\t{{.State.Status}}')
    rows = [dict(PS_ROWS[0], State={"Status": "running"})]
    assert render_table(fmt, rows, {"State.Status": "STATE"}) == (
        "NAMES       ID      |      LABELS          APP         LABELS      STATE\n"
        'WEB         3f2a1b4c5d6e|  {"app":"shop"}  shop        1           running\n'
    )


def test_table_rows_are_strict_about_unknown_fields():
    with pytest.raises(TemplateError, match="can't evaluate field Nmes"):
        render_table("table {{.Nmes}}", PS_ROWS)
    assert render_table("table {{.Labels.none}}", PS_ROWS[:1]) == "NONE\n<no value>\n"


def test_bare_table_keyword_is_rejected_with_a_hint():
    with pytest.raises(TemplateError, match="needs column fields"):
        render_table("table", PS_ROWS)


def test_render_rows_adds_one_newline_per_row_and_aligns_tabs():
    assert render_rows("{{.Names}}", PS_ROWS) == "web\ndb\n"
    assert render_rows(r"{{.Names}}\n", PS_ROWS) == "web\ndb\n"
    assert render_rows("{{.Names}}\n", PS_ROWS) == "web\ndb\n"
    assert render_rows("{{.Names}}\t{{.Pid}}", PS_ROWS) == "web         4242\ndb          0\n"
    assert render_rows("{{json .Labels}}", PS_ROWS) == '{"app":"shop"}\n{}\n'
    assert render_rows("{{.ID}}", []) == ""


def test_render_rows_passes_table_formats_to_render_table():
    assert render_rows("table {{.Names}}", PS_ROWS) == "NAMES\nweb\ndb\n"


# -- TabWriter ---------------------------------------------------------------------------------
def test_tabwriter_podman_defaults_pad_to_minwidth_and_leave_last_cell():
    tw = TabWriter()
    tw.write("a\tbb\tlast\n")
    tw.write("ccccccccccccc\td\tx\n")
    assert tw.flush() == (
        "a              bb          last\n"
        "ccccccccccccc  d           x\n"
    )
    assert tw.flush() == ""


def test_tabwriter_column_block_ends_at_a_line_without_that_column():
    tw = TabWriter(minwidth=0, tabwidth=8, padding=1)
    tw.write("aaaa\tb\nno tabs here\nc\td\n")
    assert tw.flush() == "aaaa b\nno tabs here\nc d\n"


def test_tabwriter_matches_go_right_aligned_example():
    tw = TabWriter(minwidth=5, tabwidth=0, padding=1, align_right=True)
    tw.write("a\tb\tc\td\t.\n123\t12345\t1234567\t123456789\t.\n")
    assert tw.flush() == "    a     b       c         d.\n  123 12345 1234567 123456789.\n"


def test_tabwriter_tab_padding_matches_go_example():
    tw = TabWriter(minwidth=0, tabwidth=8, padding=0, padchar="\t")
    tw.write("a\tb\tc\td\t.\n123\t12345\t1234567\t123456789\t.\n")
    assert tw.flush() == "a\tb\tc\td\t\t.\n123\t12345\t1234567\t123456789\t.\n"


def test_tabwriter_keeps_unterminated_last_line_and_trailing_tab_pads():
    tw = TabWriter(minwidth=0, padding=1)
    tw.write("x\ty\t\nlonger\tz")
    assert tw.flush() == "x      y \nlonger z"
