"""`kling edit --provider fal|segmind` without a key names the variable to set, exit 2."""

from __future__ import annotations

import pytest

from kling_core.cli import main


@pytest.mark.parametrize(("provider", "variable"), [("fal", "FAL_KEY"), ("segmind", "SEGMIND_API_KEY")])
def test_missing_key_names_the_variable(provider: str, variable: str, capsys: pytest.CaptureFixture[str],
                                        tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # type: ignore[arg-type]
    with pytest.raises(SystemExit) as info:
        main(["edit", "https://media.example.com/a.mp4", "--prompt", "make it night", "--provider", provider,
              "-o", "out.mp4"])
    err = capsys.readouterr().err
    assert info.value.code == 2
    assert variable in err and "Traceback" not in err
    assert not (tmp_path / "out.mp4").exists()  # type: ignore[operator]
