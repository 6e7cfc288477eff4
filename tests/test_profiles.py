import pytest

import wsg


def test_env_variable_selects_the_profile(monkeypatch):
    monkeypatch.setenv("WSG_PROFILE", "full")
    assert wsg.get_profile().name == "full"
    monkeypatch.setenv("WSG_PROFILE", "tiny")
    prof = wsg.get_profile()
    assert prof.name == "tiny" and prof.num_train_videos < wsg.get_profile("full").num_train_videos


def test_explicit_name_overrides_the_environment(monkeypatch):
    monkeypatch.setenv("WSG_PROFILE", "full")
    assert wsg.get_profile("tiny").name == "tiny"
    assert wsg.get_profile(" Tiny ").with_(epochs=3).epochs == 3


def test_default_follows_the_hardware(monkeypatch):
    import torch

    monkeypatch.delenv("WSG_PROFILE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert wsg.get_profile().name == "full" and wsg.get_profile().device == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert wsg.get_profile().name == "tiny" and wsg.get_profile().device == "cpu"


def test_unknown_profile_is_an_error():
    with pytest.raises(ValueError, match="unknown profile 'huge'"):
        wsg.get_profile("huge")


def test_describe_environment_names_version_device_and_profile():
    line = wsg.describe_environment("tiny")
    assert line.startswith(f"wsg {wsg.__version__}") and "profile tiny" in line and "device" in line
