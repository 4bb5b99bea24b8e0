"""The YAML config: defaults, good values, and notices that name file and line."""

from vmtui.core.config import Config, SavedConnection, load_config, save_config


def test_missing_file_gives_defaults(tmp_path):
    cfg = load_config(tmp_path / "none.yaml")
    assert cfg.stats_interval == 2.0 and cfg.connections == [] and cfg.notices == []


def test_good_file(tmp_path):
    p = tmp_path / "config.yaml"
    p.write_text(
        "stats_interval: 5\n"
        "theme: nord\n"
        "connections:\n"
        "  - name: lab\n"
        "    uri: qemu+ssh://root@lab1/system\n"
        "    autoconnect: true\n"
        "  - uri: qemu:///system\n"
    )
    cfg = load_config(p)
    assert cfg.notices == []
    assert cfg.stats_interval == 5.0 and cfg.theme == "nord"
    assert cfg.connections == [SavedConnection("lab", "qemu+ssh://root@lab1/system", True),
                               SavedConnection("qemu:///system", "qemu:///system", False)]
    assert cfg.autoconnect_uri == "qemu+ssh://root@lab1/system"


def test_syntax_error_names_file_and_line(tmp_path):
    p = tmp_path / "config.yaml"
    p.write_text("theme: nord\nconnections:\n  - uri: [qemu:///system\n")
    cfg = load_config(p)
    assert cfg.stats_interval == 2.0
    assert len(cfg.notices) == 1
    assert cfg.notices[0].startswith(f"{p}:4: not valid YAML: ") and cfg.notices[0].endswith("; using defaults")
    assert cfg.unusable


def test_bad_values_point_at_their_line(tmp_path):
    p = tmp_path / "config.yaml"
    p.write_text("theme: nord\nstats_interval: fast\nbogus: 1\nconnections:\n  - name: x\n")
    cfg = load_config(p)
    assert cfg.theme == "nord" and cfg.stats_interval == 2.0
    text = "\n".join(cfg.notices)
    assert f"{p}:2: stats_interval: must be a number" in text
    assert f"{p}:3: unknown setting 'bogus'" in text
    assert f"{p}:5: connections[0]: needs a 'uri'" in text
    assert not cfg.unusable


def test_not_a_mapping(tmp_path):
    p = tmp_path / "config.yaml"
    p.write_text("- just\n- a list\n")
    cfg = load_config(p)
    assert "expected a mapping" in cfg.notices[0]


def test_save_round_trip(tmp_path):
    p = tmp_path / "sub" / "config.yaml"
    cfg = Config(connections=[SavedConnection("h", "qemu+ssh://h/system", True)], stats_interval=3, theme="x")
    save_config(cfg, p)
    back = load_config(p)
    assert back.connections == cfg.connections and back.stats_interval == 3 and back.theme == "x"
