"""``vizcli check``: expectations about a model turned into pass/fail, with the measured value.

Each rule measures one thing and compares it with its limit:

* ``max-params``, ``max-mult-adds``, ``max-activation-memory`` (the forward/backward pass
  size of ``summary``): from one summary of the model;
* ``input-shapes``: the model runs on each shape;
* ``finite``: no NaN or Inf in any layer's output on the given images;
* ``max-dead-units``: in no layer a larger share of channels that never fire (never above
  zero, at any position of any given image);
* ``expect``: each given image's top-1 class;
* ``cam-sanity``: the Grad-CAM maps of the given images depend on the learned weights
  (the model-randomisation test of ``vizcli cam --sanity``);
* ``max-growth``: parameters and mult-adds grew by at most this share against a baseline
  summary (``vizcli summary -f json``).

Rules come from ``[tool.vizcli.check]`` in ``pyproject.toml`` (or ``--config FILE``) and from
flags, which win. Numbers take units: ``25M`` parameters, ``4.5G`` mult-adds, ``500MB``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vizcli.errors import UsageError

if TYPE_CHECKING:
    from vizcli.models import LoadedModel

SCALE = {"": 1, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
BYTES = {"B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12, "KIB": 2**10, "MIB": 2**20,
         "GIB": 2**30}  # fmt: skip
KEYS = ("max-params", "max-mult-adds", "max-activation-memory", "input-shapes", "images",
        "finite", "max-dead-units", "expect", "cam-sanity", "baseline", "max-growth")  # fmt: skip


def parse_count(text: Any, option: str) -> float:
    """``25M`` -> 25e6, ``4.5G`` -> 4.5e9, ``1200`` -> 1200 (also ``1,200``)."""
    match = re.fullmatch(r"\s*([0-9][0-9_,]*\.?[0-9]*(?:e[+-]?[0-9]+)?)\s*([kKMGT]?)\s*", str(text))
    if not match:
        raise UsageError(f"{option} takes a number such as 25M or 4.5G, got {text!r}")
    return float(match.group(1).replace(",", "").replace("_", "")) * SCALE[match.group(2)]


def parse_bytes(text: Any, option: str) -> float:
    """``500MB`` -> 5e8, ``2GiB`` -> 2**31, ``1024`` -> 1024 bytes."""
    match = re.fullmatch(r"\s*([0-9]+\.?[0-9]*)\s*([KMGT]?I?B)?\s*", str(text), re.IGNORECASE)
    if not match:
        raise UsageError(f"{option} takes a size such as 500MB or 2GiB, got {text!r}")
    return float(match.group(1)) * BYTES[(match.group(2) or "B").upper()]


def parse_fraction(text: Any, option: str) -> float:
    """``5%`` -> 0.05, ``0.5`` -> 0.5."""
    raw = str(text).strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError as exc:
        raise UsageError(f"{option} takes a fraction such as 0.5 or 5%, got {text!r}") from exc
    if not value >= 0:  # NaN too
        raise UsageError(f"{option} must be 0 or more, got {text!r}")
    return value


@dataclass(frozen=True)
class Rules:
    """What to check; ``None`` (or empty) rules are not checked."""

    max_params: float | None = None
    max_mult_adds: float | None = None
    max_activation_memory: float | None = None
    input_shapes: tuple[str, ...] = ()
    images: tuple[str, ...] = ()
    finite: bool = False
    max_dead_units: float | None = None
    expect: tuple[tuple[str, str], ...] = ()  # (image, class)
    cam_sanity: bool = False
    baseline: str | None = None
    max_growth: float | None = None

    @classmethod
    def from_mapping(cls, table: Mapping[str, Any], where: str) -> Rules:
        """Rules from a ``[tool.vizcli.check]`` table (keys spelt as the flags)."""
        unknown = sorted(set(table) - set(KEYS))
        if unknown:
            raise UsageError(f"{where}: unknown check rule {unknown[0]!r}",
                             hint="known: " + ", ".join(KEYS))  # fmt: skip
        get = table.get
        expect = get("expect", {})
        if not isinstance(expect, Mapping):
            raise UsageError(f"{where}: expect must be a table of image = class")
        return cls(
            max_params=_opt(get("max-params"), parse_count, "max-params"),
            max_mult_adds=_opt(get("max-mult-adds"), parse_count, "max-mult-adds"),
            max_activation_memory=_opt(
                get("max-activation-memory"), parse_bytes, "max-activation-memory"
            ),  # fmt: skip
            input_shapes=tuple(_strings(get("input-shapes", []), "input-shapes", where)),
            images=tuple(_strings(get("images", []), "images", where)),
            finite=_flag(get("finite", False), "finite", where),
            max_dead_units=_opt(get("max-dead-units"), parse_fraction, "max-dead-units"),
            expect=tuple((str(k), str(v)) for k, v in expect.items()),
            cam_sanity=_flag(get("cam-sanity", False), "cam-sanity", where),
            baseline=None if get("baseline") is None else str(get("baseline")),
            max_growth=_opt(get("max-growth"), parse_fraction, "max-growth"),
        )

    def merged(self, flags: Rules) -> Rules:
        """These rules with every rule the flags set replaced by the flag's."""
        import dataclasses

        changes = {f.name: getattr(flags, f.name) for f in dataclasses.fields(flags)
                   if getattr(flags, f.name) not in (None, (), False)}  # fmt: skip
        return dataclasses.replace(self, **changes)

    @property
    def empty(self) -> bool:
        return self == Rules(images=self.images)

    @property
    def runs_model(self) -> bool:
        """Whether a rule runs the real model (on the images, or on the expected ones)."""
        return bool(self.expect or (self.images and self.needs_images()))

    def needs_images(self) -> list[str]:
        return [name for name, on in (("finite", self.finite),
                                      ("max-dead-units", self.max_dead_units is not None),
                                      ("cam-sanity", self.cam_sanity)) if on]  # fmt: skip


def _opt(value: Any, parse: Callable[[Any, str], float], option: str) -> float | None:
    return None if value is None else parse(value, option)


def _strings(value: Any, key: str, where: str) -> list[str]:
    if isinstance(value, str) or not isinstance(value, list):
        raise UsageError(f"{where}: {key} must be a list of strings")
    return [str(v) for v in value]


def _flag(value: Any, key: str, where: str) -> bool:
    if not isinstance(value, bool):
        raise UsageError(f"{where}: {key} must be true or false")
    return value


def read_config(path: Path | None, start: Path) -> tuple[Rules, str | None]:
    """Rules from ``--config FILE`` or the nearest ``pyproject.toml`` above ``start``."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ImportError:
            if path is None:
                return Rules(), None
            raise UsageError("reading --config needs Python 3.11 or the tomli package") from None
    if path is None:
        found = next((d / "pyproject.toml" for d in (start, *start.parents)
                      if (d / "pyproject.toml").is_file()), None)  # fmt: skip
        if found is None:
            return Rules(), None
        path = found
    elif not path.is_file():
        raise UsageError(f"config file not found: {path}")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UsageError(f"cannot read {path} as TOML: {exc}") from exc
    table = data.get("tool", {}).get("vizcli", {}).get("check")
    if table is None:
        return Rules(), None
    return Rules.from_mapping(table, f"{path} [tool.vizcli.check]"), str(path)


# ------------------------------------------------------------------------------- results


@dataclass
class Outcome:
    rule: str
    passed: bool
    measured: str
    limit: str
    detail: str = ""
    relation: str = "limit"  # how the limit is named in the line: "limit", "expected"...

    @property
    def line(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        limit = f" ({self.relation} {self.limit})" if self.limit else ""
        detail = f" ({self.detail})" if self.detail else ""
        return f"{verdict} {self.rule}: {self.measured}{limit}{detail}"


@dataclass
class CheckReport:
    model: str
    outcomes: list[Outcome] = field(default_factory=list)
    config: str | None = None

    @property
    def passed(self) -> bool:
        return all(o.passed for o in self.outcomes)


def run_checks(
    spec: str,
    rules: Rules,
    weights: str = "auto",
    device: str = "auto",
    offline: bool | None = None,
    loaded: LoadedModel | None = None,
) -> CheckReport:
    """Measure every rule that is set; a rule that cannot be measured is a usage error."""
    from vizcli import units

    report = CheckReport(spec)
    if rules.empty:
        raise UsageError("no rule to check",
                         hint="give flags such as --max-params 25M, or a [tool.vizcli.check] "
                         "table in pyproject.toml")  # fmt: skip
    missing = rules.needs_images()
    if missing and not rules.images:
        raise UsageError(f"{missing[0]} needs images", hint="give image files or folders")
    from vizcli.summary import summarize

    totals = None
    if rules.max_params is not None or rules.max_mult_adds is not None or \
            rules.max_activation_memory is not None:  # fmt: skip
        totals = summarize(spec, weights="none", device=device, offline=offline).to_dict()["totals"]
    for key, limit, fmt in (
        ("params", rules.max_params, units.count),
        ("mult_adds", rules.max_mult_adds, units.si),
        ("forward_backward_bytes", rules.max_activation_memory, units.size),
    ):
        if limit is not None and totals is not None:
            name = {"params": "max-params", "mult_adds": "max-mult-adds",
                    "forward_backward_bytes": "max-activation-memory"}[key]  # fmt: skip
            value = totals[key]
            report.outcomes.append(Outcome(name, value <= limit, fmt(value), fmt(round(limit))))
    if rules.baseline:
        report.outcomes += _growth(spec, rules, device, offline)
    for shape in rules.input_shapes:
        report.outcomes.append(_runs_on(spec, shape, device, offline))
    if rules.runs_model:
        from vizcli.check_images import image_checks

        if loaded is None:
            from vizcli.models import resolve_model

            loaded = resolve_model(spec, weights=weights, device=device, offline=offline)
        report.outcomes += image_checks(loaded, rules)
    return report


def _growth(spec: str, rules: Rules, device: str, offline: bool | None) -> list[Outcome]:
    """Parameters and mult-adds against the baseline's, on the baseline's own inputs."""
    from vizcli import units
    from vizcli.diff import read_summary
    from vizcli.summary import summarize

    saved = read_summary(Path(rules.baseline))  # type: ignore[arg-type]
    shapes = [",".join(str(d) for d in i["shape"]) for i in saved.get("inputs", [])]
    dtypes = [i.get("dtype", "float32") for i in saved.get("inputs", [])]
    summary = summarize(spec, inputs=shapes or None, dtypes=dtypes or None, weights="none",
                        device=device, offline=offline)  # fmt: skip
    base, totals = saved["totals"], summary.to_dict()["totals"]
    limit = rules.max_growth if rules.max_growth is not None else 0.0
    outcomes = []
    for key, label in (("params", "parameters"), ("mult_adds", "mult-adds")):
        old, new = base[key], totals[key]
        growth = (new - old) / old if old else (0.0 if new == old else math.inf)
        fmt = units.count if key == "params" else units.si
        outcomes.append(Outcome(f"max-growth ({label})", growth <= limit, f"{growth:+.2%}",
                                f"{limit:+.2%}", f"{fmt(old)} -> {fmt(new)}"))  # fmt: skip
    return outcomes


def _runs_on(spec: str, shape: str, device: str, offline: bool | None) -> Outcome:
    from vizcli.errors import VizError
    from vizcli.summary import summarize

    try:
        summarize(spec, inputs=[shape], weights="none", device=device, offline=offline)
    except VizError as exc:
        if "cannot run on input" not in str(exc):
            raise
        return Outcome(f"input-shapes {shape}", False, "fails", "", str(exc))
    return Outcome(f"input-shapes {shape}", True, "runs", "")


def junit_xml(report: CheckReport) -> str:
    """JUnit XML: one test case per rule, failures with the measured value and the limit."""
    from xml.sax.saxutils import quoteattr

    failures = sum(not o.passed for o in report.outcomes)
    lines = ['<?xml version="1.0" encoding="UTF-8"?>',
             f'<testsuites tests="{len(report.outcomes)}" failures="{failures}">',
             f'  <testsuite name={quoteattr("vizcli check " + report.model)} '
             f'tests="{len(report.outcomes)}" failures="{failures}">']  # fmt: skip
    for outcome in report.outcomes:
        head = f'    <testcase classname="vizcli.check" name={quoteattr(outcome.rule)}'
        if outcome.passed:
            lines.append(head + " />")
        else:
            lines += [head + ">", f"      <failure message={quoteattr(outcome.line)} />",
                      "    </testcase>"]  # fmt: skip
    lines += ["  </testsuite>", "</testsuites>"]
    return "\n".join(lines) + "\n"


def github_annotations(report: CheckReport) -> list[str]:
    """GitHub Actions workflow commands: an error annotation per failed rule."""

    def escape(text: str) -> str:
        return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")

    def escape_property(text: str) -> str:
        return escape(text).replace(":", "%3A").replace(",", "%2C")

    return [f"::error title={escape_property('vizcli check: ' + o.rule)}::{escape(o.line)}"
            for o in report.outcomes if not o.passed]  # fmt: skip
