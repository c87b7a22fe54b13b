"""The `examples` section: example answers for steps, read only from inside the spec's folder."""
from __future__ import annotations

import difflib
from pathlib import Path
from types import MappingProxyType

from engine.spec.model import ExampleAnswer, Examples


class ExampleChecks:
    def examples(self, examples: dict | None, steps: dict) -> Examples | None:
        if examples is None:
            return None
        path = ("examples",)
        observable = examples["observable"]
        if observable["type"] not in self.data["observable_types"]:
            self.error(path + ("observable", "type"), f"{observable['type']!r} is not in observable_types",
                       "one of: " + ", ".join(self.data["observable_types"]))
        folder = Path(self.document.file).resolve().parent
        answers = {}
        for name, answer in examples["answers"].items():
            if name not in steps:
                close = difflib.get_close_matches(name, list(steps), n=1)
                self.error(path + ("answers", name), f"no step named {name!r}",
                           f"did you mean {close[0]!r}?" if close else "", key=True)
                continue
            file = (folder / answer["file"]).resolve()
            if not file.is_relative_to(folder):
                # Lint runs in CI on specs from anyone: a path out of the spec's folder could read
                # /proc/self/environ or a key file into a warning.
                self.error(path + ("answers", name, "file"), f"{answer['file']} is outside the spec's folder",
                           "example answers live next to the spec, e.g. examples/<vendor>/<step>.json")
                continue
            if not file.is_file():
                self.error(path + ("answers", name, "file"), f"no such file: {answer['file']}",
                           "paths are relative to the spec file")
                continue
            content_type = answer.get("content_type", "application/json")
            answers[name] = ExampleAnswer(name, str(file), answer.get("status", 200), content_type)
        return Examples(dict(observable), MappingProxyType(answers))

