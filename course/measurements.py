"""Measured numbers from one source: the JSON files in measurements/ (measurements/README.md gives
their format). Pages, notebooks and the README quote a measured number through this module, never
by typing it:

- in a site page, `<!-- measured: bench_h200 fp8.median -->` renders one number (docs/hooks/course_site.py
  calls `render_markers`). The second word is a key path into the file's "values", or arithmetic on
  such paths (`2 * 0.6e9 * bf16.median / 1e12`); `| .1f` picks a format (default: thousands
  separated, as written). `<!-- measured-table: serving_h200 -->` renders a file as a table, and
  `<!-- measured-source: bench_h200 -->` says where its numbers came from (machine, versions, date,
  command);
- in a notebook or in code, `value("kernels_h200", "copy_tb_per_s")`;
- in README.md, the results table is written by `python -m course.readme` (`readme_results` here).
`python -m course.measurements` prints every file as a table.
"""

import argparse
import ast
import json
import operator
import re
import sys
from functools import lru_cache
from pathlib import Path

from course.paths import REPO_ROOT

FOLDER = REPO_ROOT / "measurements"
REQUIRED = ("title", "kind", "command", "date", "machine", "versions", "values")
KINDS = ("bench", "serving", "changes", "numbers")

VALUE = re.compile(r"<!--\s*measured:\s*(?P<name>[\w-]+)\s+(?P<expr>[^|>]+?)\s*(?:\|\s*(?P<spec>[^>]*?)\s*)?-->")
TABLE = re.compile(r"<!--\s*measured-table:\s*(?P<name>[\w-]+)\s*-->")
SOURCE = re.compile(r"<!--\s*measured-source:\s*(?P<name>[\w-]+)\s*-->")


class MeasurementError(ValueError):
    """A marker or a measurement file that does not fit: the message names the file and the fix."""


def names() -> list[str]:
    return sorted(p.stem for p in FOLDER.glob("*.json"))


def load(name: str) -> dict:
    path = FOLDER / f"{name}.json"
    if not path.is_file():
        raise MeasurementError(f"no measurement file measurements/{name}.json (there are: {', '.join(names()) or 'none'})")
    return _load(path, path.stat().st_mtime)


@lru_cache(maxsize=None)
def _load(path: Path, mtime: float) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise MeasurementError(f"measurements/{path.name} is not valid JSON: {err}") from None
    missing = [key for key in REQUIRED if key not in data]
    if missing:
        raise MeasurementError(f"measurements/{path.name} lacks {missing}; measurements/README.md lists what a file holds")
    if data["kind"] not in KINDS:
        raise MeasurementError(f"measurements/{path.name}: kind {data['kind']!r} is none of {KINDS}")
    return data


def value(name: str, path: str | list):
    """One number of a file: value("bench_h200", "fp8.median"), a path into its "values", or into
    another section of numbers beside them (value("ch11_gpu", ["roofline", "bf16, H200", "seconds"])).
    A list of keys holds keys that a dotted path cannot (spaces, commas, dots)."""
    data = load(name)
    keys = path.split(".") if isinstance(path, str) else list(path)
    found = data["values"]
    if keys[:1] == ["values"] and "values" not in found:  # values["a key with spaces"]
        keys = keys[1:]
    elif keys and keys[0] not in found and keys[0] in data and keys[0] not in REQUIRED and isinstance(data[keys[0]], dict):
        found, keys = data[keys[0]], keys[1:]
    for i, key in enumerate(keys):
        key = str(key)
        if isinstance(found, list) and key.isdigit() and int(key) < len(found):
            found = found[int(key)]
        elif isinstance(found, dict) and key in found:
            found = found[key]
        else:
            have = ", ".join(found) if isinstance(found, dict) else f"a list of {len(found)}" if isinstance(found, list) else repr(found)
            raise MeasurementError(f"measurements/{name}.json has no {'.'.join(map(str, keys[:i + 1]))!r} in its values (there: {have})")
    return found


_OPERATORS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


def evaluate(name: str, expr: str) -> float:
    """A key path, or + - * / on key paths and numbers: what a page derives from a measurement."""
    try:
        tree = ast.parse(expr.strip(), mode="eval").body
    except SyntaxError:
        raise MeasurementError(f"measured: {name} {expr!r} is not a key path or arithmetic on key paths") from None

    def keys(node) -> list:
        """fp8.median -> ["fp8", "median"]; a key that is no name is a subscript, from the section's
        name: values["transformers (continuous batching)"].median, roofline["bf16, H200"].seconds"""
        if isinstance(node, ast.Name):
            return [node.id]
        if isinstance(node, ast.Attribute):
            return keys(node.value) + [node.attr]
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
            return keys(node.value) + [node.slice.value]
        raise MeasurementError(f"measured: {name} {expr!r}: {ast.unparse(node)!r} is not a key path")

    def walk(node):
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            return _OPERATORS[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, (ast.Name, ast.Attribute, ast.Subscript)):
            path = keys(node)
            found = value(name, path)
            if isinstance(found, bool) or not isinstance(found, (int, float)):
                inside = f" (inside: {', '.join(found)})" if isinstance(found, dict) else ""
                raise MeasurementError(f"measurements/{name}.json: {'.'.join(map(str, path))!r} is not a number{inside}")
            return found
        raise MeasurementError(f"measured: {name} {expr!r}: only key paths, numbers and + - * / are allowed")

    return walk(tree)


def fmt(number, spec: str | None = None) -> str:
    """26142 -> '26,142'; 4.25 -> '4.25'; with a spec (',.0f', '.1f', '.0%'), as format() does."""
    if spec:
        return format(number, spec)
    if isinstance(number, float) and number.is_integer() and abs(number) >= 1000:
        number = int(number)
    if isinstance(number, (int, float)):
        return format(number, ",")  # as written in the file; a derived number needs a spec
    return str(number)


def machine_line(data: dict) -> str:
    """{"gpu": "NVIDIA H200", "driver": "580.159"} -> 'NVIDIA H200, driver 580.159'."""
    return ", ".join(str(v) if k in ("gpu", "cpu") else f"{k} {v}" for k, v in data["machine"].items())


def source_line(name: str) -> str:
    """Machine, versions, date and command of a file, in one sentence."""
    data = load(name)
    machine = machine_line(data)
    versions = ", ".join(f"{k} {v}" for k, v in data["versions"].items())
    return f"{machine}; {versions}; {data['date']}; `{data['command']}` (measurements/{name}.json)"


# ---------------------------------------------------------------------------------------------
# Tables


def table(name: str) -> str:
    data = load(name)
    return {"bench": _bench_table, "serving": _serving_table, "changes": _changes_table, "numbers": _numbers_table}[data["kind"]](data)


def _row(cells) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _head(*columns) -> list[str]:
    return [_row(columns), _row(["---"] * len(columns))]


def _bench_table(data: dict) -> str:
    lines = _head("KV cache or engine", "runs (output tok/s)", "median", "TTFT mean / p99 (ms)", "TPOT mean / p99 (ms)")
    for label, run in data["values"].items():
        latency = [f"{fmt(run[k]['mean'], '.0f' if k == 'ttft_ms' else '.1f')} / {fmt(run[k]['p99'], '.0f' if k == 'ttft_ms' else '.1f')}"
                   if k in run else "" for k in ("ttft_ms", "tpot_ms")]
        lines.append(_row([label, " / ".join(fmt(x) for x in run["tokens_per_s"]), f"**{fmt(run['median'])}**", *latency]))
    return "\n".join(lines)


def _serving_table(data: dict) -> str:
    lines = _head("arrivals", "duration (s)", "req/s", "output tok/s", "TTFT mean / p50 / p99 (ms)",
                  "TPOT mean / p50 / p99 (ms)", "ITL mean / p50 / p99 (ms)")
    for rate, run in data["values"].items():
        trio = [" / ".join(fmt(run[k][s], ".1f") for s in ("mean", "p50", "p99")) for k in ("ttft_ms", "tpot_ms", "itl_ms")]
        arrivals = "all at once" if rate == "inf" else f"{rate} req/s"
        lines.append(_row([arrivals, fmt(run["duration_s"], ".1f"), fmt(run["request_throughput"], ".2f"),
                           fmt(run["output_throughput"], ",.0f" if run["output_throughput"] >= 100 else ".2f"), *trio]))
    return "\n".join(lines)


def _changes_table(data: dict) -> str:
    lines = _head("change", "what was timed", "before", "after")
    for change in data["values"]:
        unit = change["unit"]
        lines.append(_row([change["change"], change["metric"], f"{fmt(change['before'])} {unit}", f"{fmt(change['after'])} {unit}"]))
    return "\n".join(lines)


def _numbers_table(data: dict) -> str:
    lines = _head("what", "value")
    for key, entry in data["values"].items():
        if isinstance(entry, dict) and "value" in entry:
            lines.append(_row([entry.get("what", key), f"{fmt(entry['value'])} {entry.get('unit', '')}".strip()]))
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Markers and the README block


def render_markers(markdown: str, where: str = "a page") -> str:
    """Every measured marker of a markdown text replaced by what it names."""
    def one(m):
        try:
            return fmt(evaluate(m["name"], m["expr"]), m["spec"] or None)
        except (MeasurementError, ValueError) as err:
            raise MeasurementError(f"{where}: {m[0]}: {err}") from None

    def whole(m):
        try:
            return table(m["name"])
        except MeasurementError as err:
            raise MeasurementError(f"{where}: {m[0]}: {err}") from None

    def source(m):
        return source_line(m["name"])

    return VALUE.sub(one, TABLE.sub(whole, SOURCE.sub(source, markdown)))


def results() -> list[str]:
    """The benchmark files the README shows: every file of kind "bench" but those that say
    "readme": false (a chapter's teaching run, quoted on its own page), GPU machines first."""
    benches = [n for n in names() if load(n)["kind"] == "bench" and load(n).get("readme", True)]
    return sorted(benches, key=lambda n: ("gpu" not in load(n)["machine"], n))


def readme_results() -> str:
    """The README's results table: each benchmark file's median per configuration, with its
    machine and versions, then each file's command."""
    lines = _head("workload", "machine", "versions", "KV cache or engine", "output tok/s (median)")
    commands = []
    for name in results():
        data = load(name)
        versions = ", ".join(f"{k} {v}" for k, v in data["versions"].items())
        for label, run in data["values"].items():
            lines.append(_row([data.get("workload", data["title"]), machine_line(data), versions, label, f"**{fmt(run['median'])}**"]))
        # A command written by hand may go on in words after ", " ("..., three runs of each"): keep the command.
        commands.append(f"`{data['command'].split(', ')[0]}`" if "python -m" in data["command"] else data["command"])
    sources = ", ".join(f"`measurements/{n}.json`" for n in results())
    return ("\n".join(lines) + "\n\nCommands: " + "; ".join(dict.fromkeys(commands))
            + f". Every run, the dates and the exact commands: {sources}.\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course.measurements", description="print every measurement file's table")
    parser.parse_args(argv)
    for name in names():
        print(f"## {name}: {load(name)['title']}\n\n{table(name)}\n\nSource: {source_line(name)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
