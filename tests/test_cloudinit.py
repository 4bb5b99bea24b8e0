"""cloud-init documents: validation, form <-> YAML, passwords, seed ISO."""

import io
import warnings

import pycdlib
import pytest
import yaml

from tests.prereq import missing
from vmtui.core.provision import cloudinit as ci
from vmtui.core.provision.cloudinit import (
    Problem,
    build_seed_iso,
    default_meta_data,
    hash_password,
    new_instance_id,
    validate_meta_data,
    validate_network_config,
    validate_user_data,
)
from vmtui.core.provision.cloudinit_form import CloudConfigForm, UserForm, WriteFileForm, apply_form, form_from_yaml

try:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt
except ImportError:  # Python >= 3.13: check with openssl instead
    import subprocess
    import types

    def _openssl_crypt(plain: str, salted: str) -> str:
        salt = salted.split("$")[2]
        out = subprocess.run(["openssl", "passwd", "-6", "-salt", salt, "-stdin"],
                             input=plain + "\n", capture_output=True, text=True, check=True)
        return out.stdout.strip()

    crypt = types.SimpleNamespace(crypt=_openssl_crypt)


# -------------------------------------------------------------- validation


def test_valid_user_data_has_no_problems():
    text = """#cloud-config
hostname: web1
fqdn: web1.example.org
locale: en_US.UTF-8
timezone: Europe/Berlin
users:
  - default
  - name: alice
    groups: [wheel, adm]
    sudo: ALL=(ALL) NOPASSWD:ALL
    shell: /bin/bash
    ssh_authorized_keys:
      - ssh-ed25519 AAAAC3Nza alice@laptop
    lock_passwd: false
    hashed_passwd: $6$salt$hash
ssh_pwauth: false
package_update: true
package_upgrade: false
packages: [vim, [libpython3, "3.11"]]
runcmd:
  - echo hello
  - [sh, -c, "echo world"]
bootcmd: [[echo, boot]]
write_files:
  - path: /etc/motd
    content: |
      hi
    permissions: "0644"
    owner: root:root
    encoding: text/plain
chpasswd: {expire: false, users: [{name: alice, password: x, type: text}]}
ssh_keys: {rsa_private: "-----BEGIN...", rsa_public: ssh-rsa AAA}
manage_etc_hosts: localhost
preserve_hostname: false
growpart: {mode: auto, devices: ["/"]}
power_state: {mode: reboot, delay: now, message: bye}
final_message: done after $UPTIME seconds
"""
    assert validate_user_data(text) == []


def test_yaml_syntax_error_has_line_and_column():
    text = "#cloud-config\nhostname: a\n  bad: indent\n"
    problems = validate_user_data(text)
    assert len(problems) == 1
    p = problems[0]
    assert isinstance(p, Problem)
    assert (p.line, p.column) == (3, 6)
    assert "YAML syntax error" in p.message and "mapping values are not allowed" in p.message


def test_yaml_syntax_error_unclosed_flow():
    problems = validate_user_data("#cloud-config\npackages: [vim, git\nhostname: x\n")
    assert len(problems) == 1 and problems[0].line >= 2 and problems[0].column >= 1


def test_missing_header():
    problems = validate_user_data("hostname: a\n")
    assert [(p.line, p.column) for p in problems] == [(1, 1)]
    assert "#cloud-config" in problems[0].message


def test_header_with_spaces_is_flagged():
    problems = validate_user_data("# cloud-config\nhostname: a\n")
    assert len(problems) == 1 and "exactly" in problems[0].message


def test_scripts_are_not_cloud_config():
    assert validate_user_data("#!/bin/sh\necho: [unbalanced\n") == []


def test_jinja_template_header_accepted():
    assert validate_user_data("## template: jinja\n#cloud-config\nhostname: a\n") == []


def test_schema_errors_have_path_and_line():
    text = '#cloud-config\nhostname: ok\nusers: [{name: 5}]\npackage_update: "yes please"\n'
    problems = validate_user_data(text)
    by_path = {p.path: p for p in problems}
    assert set(by_path) == {"users.0.name", "package_update"}
    assert by_path["users.0.name"].line == 3
    assert by_path["users.0.name"].column == 16
    assert "5 is not of type 'string'" in by_path["users.0.name"].message
    assert by_path["package_update"].line == 4
    assert by_path["package_update"].column == 17
    assert "boolean" in by_path["package_update"].message


def test_schema_errors_block_style_lines():
    text = """#cloud-config
users:
  - default
  - name: bob
    sudo: 5
write_files:
  - path: /x
    contnet: typo
power_state:
  delay: now
"""
    problems = validate_user_data(text)
    got = {(p.path, p.line) for p in problems}
    assert ("users.1.sudo", 5) in got
    assert ("write_files.0", 7) in got
    assert ("power_state", 10) in got  # missing "mode"
    assert any("contnet" in p.message for p in problems)
    assert any("'mode' is a required property" in p.message for p in problems)


def test_unknown_top_level_keys_are_accepted():
    text = "#cloud-config\nmy_custom_module: {a: 1}\nsnap: {commands: [x]}\napt: {preserve_sources_list: true}\n"
    assert validate_user_data(text) == []


def test_empty_cloud_config_ok_and_non_mapping_rejected():
    assert validate_user_data("#cloud-config\n") == []
    problems = validate_user_data("#cloud-config\n- a\n")
    assert len(problems) == 1 and "mapping" in problems[0].message


def test_schema_source():
    schema, source = ci.cloud_config_schema()
    assert source in ("cloud-init", "vmtui")
    assert "properties" in schema or "allOf" in schema


def test_meta_data_validation():
    assert validate_meta_data(default_meta_data("web1", "iid-1")) == []
    problems = validate_meta_data("local-hostname: web1\n")
    assert problems and "instance-id" in problems[0].message
    assert validate_meta_data("instance-id: [x\n")[0].message.startswith("YAML syntax error")
    assert validate_meta_data("")  # empty meta-data is an error


def test_default_meta_data_and_instance_ids():
    a, b = new_instance_id(), new_instance_id()
    assert a != b and a.startswith("iid-vmtui-") and len(a) == len("iid-vmtui-") + 12
    md = yaml.safe_load(default_meta_data("web1", a))
    assert md == {"instance-id": a, "local-hostname": "web1"}
    assert yaml.safe_load(default_meta_data("x"))["instance-id"].startswith("iid-vmtui-")


def test_network_config_v2():
    good = """version: 2
ethernets:
  eth0:
    match: {macaddress: "52:54:00:12:34:56"}
    set-name: eth0
    dhcp4: false
    addresses: [192.168.1.10/24]
    gateway4: 192.168.1.1
    routes:
      - to: 10.0.0.0/8
        via: 192.168.1.254
    nameservers:
      addresses: [1.1.1.1]
      search: [example.org]
"""
    assert validate_network_config(good) == []
    bad = "version: 2\nethernets:\n  eth0:\n    dhcp4: maybe\n    routes:\n      - via: 10.0.0.1\n"
    problems = validate_network_config(bad)
    got = {(p.path, p.line) for p in problems}
    assert ("ethernets.eth0.dhcp4", 4) in got
    assert ("ethernets.eth0.routes.0", 6) in got


def test_network_config_v1_and_wrapper_and_empty():
    v1 = "version: 1\nconfig:\n  - type: physical\n    name: eth0\n    subnets: [{type: dhcp}]\n"
    assert validate_network_config(v1) == []
    assert validate_network_config("network:\n  version: 2\n  ethernets: {}\n") == []
    problems = validate_network_config("network:\n  version: 3\n")
    assert problems[0].path == "network.version" and problems[0].line == 2
    assert validate_network_config("") == []
    assert validate_network_config("ethernets: {}\n")[0].message == "'version' is a required property"


# --------------------------------------------------------------- passwords


def test_hash_password_sha512_crypt():
    hashed = hash_password("correct horse")
    assert hashed.startswith("$6$")
    assert crypt.crypt("correct horse", hashed) == hashed
    assert crypt.crypt("wrong", hashed) != hashed
    assert hash_password("correct horse") != hashed  # random salt


def test_hash_password_given_salt():
    hashed = hash_password("pw", salt="abcdefgh")
    assert hashed.startswith("$6$abcdefgh$")
    assert hashed == crypt.crypt("pw", "$6$abcdefgh")
    assert hash_password("pw", salt="$6$abcdefgh$ignored") == hashed
    with pytest.raises(ValueError):
        hash_password("pw", salt="bad salt!")


def test_hash_password_openssl_fallback(monkeypatch):
    import shutil

    if not shutil.which("openssl"):
        missing("no openssl")
    monkeypatch.setattr(ci, "_crypt_module", lambda: None)
    hashed = hash_password("s3cret", salt="saltsalt")
    assert hashed == crypt.crypt("s3cret", "$6$saltsalt")


# -------------------------------------------------------------------- form

DOC = """#cloud-config
# top comment
hostname: old
apt:
  primary: [{arches: [default], uri: "http://mirror"}]
users:
  - default
  - name: bob
    gecos: Bob B
    groups: users, admin
    lock_passwd: true
packages:
  - vim
# comment before an unknown key
zzz_unknown: 1
runcmd:
  - [sh, -c, echo hi]
mounts:
  - [swap, null]
"""


def test_form_from_yaml_reads_fields():
    form = form_from_yaml(DOC)
    assert form.hostname == "old"
    assert form.fqdn is None
    assert [u.name for u in form.users] == ["default", "bob"]
    bob = form.users[1]
    assert bob.groups == ["users", "admin"]
    assert bob.extra == {"gecos": "Bob B", "lock_passwd": True}
    assert form.packages == ["vim"]
    assert form.runcmd == [["sh", "-c", "echo hi"]]
    assert form.package_update is None


def test_unchanged_form_leaves_text_identical():
    assert apply_form(DOC, form_from_yaml(DOC)) == DOC


def test_round_trip_keeps_unknown_keys_order_and_comments():
    form = form_from_yaml(DOC)
    form.hostname = "new"
    form.packages.append("htop")
    form.timezone = "Europe/Berlin"
    form.package_update = True
    form.runcmd = []  # cleared: key removed
    out = apply_form(DOC, form)
    data = yaml.safe_load(out)
    assert out.startswith("#cloud-config\n# top comment\n")
    assert "# comment before an unknown key\n" in out
    assert list(data) == ["hostname", "apt", "users", "packages", "zzz_unknown", "mounts", "timezone", "package_update"]
    assert data["apt"] == {"primary": [{"arches": ["default"], "uri": "http://mirror"}]}
    assert data["zzz_unknown"] == 1 and data["mounts"] == [["swap", None]]
    assert data["hostname"] == "new" and data["timezone"] == "Europe/Berlin"
    assert data["packages"] == ["vim", "htop"]
    assert "runcmd" not in data
    # untouched users block kept verbatim (string groups, original order)
    assert "    groups: users, admin\n" in out
    assert validate_user_data(out) == []
    # and reading back gives the same form
    again = form_from_yaml(out)
    assert again == form


def test_users_edit_keeps_unmodelled_user_keys():
    form = form_from_yaml(DOC)
    form.users[1].ssh_keys = ["ssh-ed25519 AAAA bob@host"]
    form.users[1].shell = "/bin/zsh"
    form.users.append(UserForm(name="carol", groups=["wheel"], sudo="ALL=(ALL) NOPASSWD:ALL"))
    out = apply_form(DOC, form)
    users = yaml.safe_load(out)["users"]
    assert users[0] == "default"
    assert users[1]["gecos"] == "Bob B" and users[1]["lock_passwd"] is True
    assert users[1]["ssh_authorized_keys"] == ["ssh-ed25519 AAAA bob@host"]
    assert users[1]["shell"] == "/bin/zsh"
    assert users[2] == {"name": "carol", "groups": ["wheel"], "sudo": "ALL=(ALL) NOPASSWD:ALL"}
    assert yaml.safe_load(out)["zzz_unknown"] == 1


def test_plain_password_is_hashed_never_written():
    form = form_from_yaml(DOC)
    form.users.append(UserForm(name="dave", password="hunter2-plain"))
    out = apply_form(DOC, form)
    assert "hunter2-plain" not in out
    dave = yaml.safe_load(out)["users"][2]
    assert dave["passwd"].startswith("$6$")
    assert crypt.crypt("hunter2-plain", dave["passwd"]) == dave["passwd"]
    assert dave["lock_passwd"] is False
    # the form forgot the plain text; applying again is stable
    assert form.users[2].password is None and form.users[2].password_hash == dave["passwd"]
    assert apply_form(out, form) == out
    assert "hunter2-plain" not in repr(form)


def test_hashed_passwd_key_kept():
    doc = "#cloud-config\nusers:\n  - name: e\n    hashed_passwd: $6$a$b\n"
    form = form_from_yaml(doc)
    assert form.users[0].password_hash == "$6$a$b"
    form.users[0].password = "x"
    user = yaml.safe_load(apply_form(doc, form))["users"][0]
    assert "passwd" not in user and crypt.crypt("x", user["hashed_passwd"]) == user["hashed_passwd"]


def test_both_password_keys_kept():
    doc = "#cloud-config\nusers:\n  - name: e\n    passwd: $6$a$b\n    hashed_passwd: $6$c$d\n"
    form = form_from_yaml(doc)
    assert form.users[0].password_hash == "$6$a$b"
    form.users[0].shell = "/bin/sh"
    user = yaml.safe_load(apply_form(doc, form))["users"][0]
    assert user["passwd"] == "$6$a$b" and user["hashed_passwd"] == "$6$c$d"


def test_write_files_form():
    form = form_from_yaml(DOC)
    form.write_files.append(WriteFileForm(path="/etc/motd", content="hello\nworld\n", permissions="0644"))
    out = apply_form(DOC, form)
    assert "content: |\n" in out
    wf = yaml.safe_load(out)["write_files"]
    assert wf == [{"path": "/etc/motd", "content": "hello\nworld\n", "permissions": "0644"}]
    assert form_from_yaml(out).write_files == form.write_files
    assert validate_user_data(out) == []


def test_write_files_extra_keys_kept():
    doc = "#cloud-config\nwrite_files:\n  - path: /a\n    content: x\n    append: true\n    defer: true\n"
    form = form_from_yaml(doc)
    form.write_files[0].content = "y"
    wf = yaml.safe_load(apply_form(doc, form))["write_files"][0]
    assert wf == {"path": "/a", "content": "y", "append": True, "defer": True}


def test_apply_form_to_empty_document():
    form = CloudConfigForm(
        hostname="h", ssh_pwauth=False, packages=["git"], users=[UserForm(name="default"), UserForm(name="u")]
    )
    out = apply_form("", form)
    assert out.startswith("#cloud-config\n")
    assert yaml.safe_load(out) == {
        "hostname": "h", "users": ["default", {"name": "u"}], "packages": ["git"], "ssh_pwauth": False,
    }
    assert validate_user_data(out) == []


def test_apply_form_flow_style_document_falls_back_to_dump():
    doc = "#cloud-config\n{hostname: a, custom: [1, 2]}\n"
    form = form_from_yaml(doc)
    form.hostname = "b"
    out = apply_form(doc, form)
    assert yaml.safe_load(out) == {"hostname": "b", "custom": [1, 2]}
    assert out.startswith("#cloud-config\n")


def test_apply_form_last_key_with_document_end():
    doc = "#cloud-config\nfoo: 1\nhostname: a\n...\n"
    form = form_from_yaml(doc)
    form.hostname = "b"
    out = apply_form(doc, form)
    assert yaml.safe_load(out) == {"foo": 1, "hostname": "b"}


def test_apply_form_duplicate_keys_fall_back_to_dump():
    doc = "#cloud-config\nhostname: a\nfoo: 1\nhostname: b\n"
    form = form_from_yaml(doc)
    assert form.hostname == "b"  # last one wins, as in cloud-init
    form.hostname = "c"
    out = apply_form(doc, form)
    assert out.startswith("#cloud-config\n")
    assert yaml.safe_load(out) == {"hostname": "c", "foo": 1}
    assert out.count("hostname") == 1


def test_apply_form_rejects_broken_yaml():
    with pytest.raises(ValueError):
        apply_form("#cloud-config\nfoo: [\n", CloudConfigForm())
    with pytest.raises(ValueError):
        form_from_yaml("#cloud-config\nfoo: [\n")


# ---------------------------------------------------------------- seed ISO


def _read_iso(data: bytes) -> pycdlib.PyCdlib:
    iso = pycdlib.PyCdlib()
    iso.open_fp(io.BytesIO(data))
    return iso


def _get(iso: pycdlib.PyCdlib, **path) -> bytes:
    out = io.BytesIO()
    iso.get_file_from_iso_fp(out, **path)
    return out.getvalue()


def test_seed_iso_contents():
    user_data = "#cloud-config\nhostname: vm1\nwrite_files: [{path: /x, content: \"é\"}]\n"
    meta_data = default_meta_data("vm1", "iid-test")
    network = "version: 2\nethernets: {eth0: {dhcp4: true}}\n"
    data = build_seed_iso(user_data, meta_data, network)
    assert isinstance(data, bytes) and len(data) % 2048 == 0
    iso = _read_iso(data)
    try:
        assert iso.pvd.volume_identifier.decode().strip() == "cidata"
        assert iso.has_joliet() and iso.has_rock_ridge()
        rr_names = {c.rock_ridge.name() for c in iso.list_children(rr_path="/") if c.rock_ridge and not c.is_dot() and not c.is_dotdot()}
        assert rr_names == {b"user-data", b"meta-data", b"network-config"}
        joliet_names = {
            c.file_identifier().decode("utf-16-be")
            for c in iso.list_children(joliet_path="/")
            if not c.is_dot() and not c.is_dotdot()
        }
        assert joliet_names == {"user-data", "meta-data", "network-config"}
        for name, content in (("user-data", user_data), ("meta-data", meta_data), ("network-config", network)):
            assert _get(iso, rr_path=f"/{name}") == content.encode()
            assert _get(iso, joliet_path=f"/{name}") == content.encode()
    finally:
        iso.close()


def test_seed_iso_without_network_config():
    iso = _read_iso(build_seed_iso(b"#cloud-config\n", b"instance-id: a\n"))
    try:
        names = {c.rock_ridge.name() for c in iso.list_children(rr_path="/") if c.rock_ridge and not c.is_dot() and not c.is_dotdot()}
        assert names == {b"user-data", b"meta-data"}
        assert _get(iso, rr_path="/meta-data") == b"instance-id: a\n"
    finally:
        iso.close()


def test_seed_iso_label_seen_by_blkid(tmp_path):
    """cloud-init finds the seed with ``blkid -t LABEL=cidata``."""
    import shutil
    import subprocess

    tool = shutil.which("blkid", path="/usr/sbin:/sbin:/usr/bin:/bin")
    if not tool:
        missing("blkid not installed")
    path = tmp_path / "seed.iso"
    path.write_bytes(build_seed_iso("#cloud-config\n", "instance-id: a\n"))
    out = subprocess.run([tool, "-p", "-o", "export", str(path)], capture_output=True, text=True, check=True).stdout
    assert "LABEL=cidata" in out.splitlines()
    assert "TYPE=iso9660" in out.splitlines()
