"""The files a spec names: its example answers and its logo, read only from inside the spec's folder."""
from __future__ import annotations

import difflib
from pathlib import Path
from types import MappingProxyType

from engine.spec.model import ExampleAnswer, Examples, ModuleLook


MAX_LOGO_BYTES = 64 * 1024


class ExampleChecks:
    def module_look(self, section: dict | None) -> ModuleLook:
        """The spec's `module:` section, its logo read only from inside the spec's folder."""
        section = section or {}
        logo = None
        if "logo" in section:
            logo = self.file_in_spec_folder(section["logo"], ("module", "logo"))
            if logo is not None and logo.stat().st_size > MAX_LOGO_BYTES:
                self.error(("module", "logo"), f"{section['logo']} is {logo.stat().st_size} bytes; a logo is at most "
                                               f"{MAX_LOGO_BYTES}", "XDR shows it small: an SVG or a small PNG")
                logo = None
        return ModuleLook(section.get("short_description", ""), section.get("tips", ""),
                          str(logo) if logo is not None else None, tuple(section.get("product_categories", ())))

    def file_in_spec_folder(self, written: str, path: tuple) -> Path | None:
        """A file named by the spec, relative to it; None (and an error) outside its folder or missing.
        Lint runs in CI on specs from anyone: a path out of the folder could read /proc/self/environ."""
        folder = Path(self.document.file).resolve().parent
        file = (folder / written).resolve()
        if not file.is_relative_to(folder):
            self.error(path, f"{written} is outside the spec's folder",
                       "files a spec names live next to it, e.g. examples/<vendor>/<step>.json")
            return None
        if not file.is_file():
            self.error(path, f"no such file: {written}", "paths are relative to the spec file")
            return None
        return file

    def examples(self, examples: dict | None, steps: dict) -> Examples | None:
        if examples is None:
            return None
        path = ("examples",)
        observable = examples["observable"]
        if observable["type"] not in self.data["observable_types"]:
            self.error(path + ("observable", "type"), f"{observable['type']!r} is not in observable_types",
                       "one of: " + ", ".join(self.data["observable_types"]))
        answers = {}
        for name, answer in examples["answers"].items():
            if name not in steps:
                close = difflib.get_close_matches(name, list(steps), n=1)
                self.error(path + ("answers", name), f"no step named {name!r}",
                           f"did you mean {close[0]!r}?" if close else "", key=True)
                continue
            file = self.file_in_spec_folder(answer["file"], path + ("answers", name, "file"))
            if file is None:
                continue
            content_type = answer.get("content_type", "application/json")
            answers[name] = ExampleAnswer(name, str(file), answer.get("status", 200), content_type)
        return Examples(dict(observable), MappingProxyType(answers))

