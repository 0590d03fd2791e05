"""test_config_errors.py — llmq-worker's command line: bad configs name the
file, line and key and exit 3; --check-config, --help, --version."""
import subprocess


def run(build_dir, *args, env=None):
    return subprocess.run([str(build_dir / "llmq-worker"), *args], capture_output=True, text=True,
                          timeout=30, env=env)


def test_unknown_key_names_file_line_and_key(build_dir, tmp_path):
    cfg = tmp_path / "bad.cfg"
    cfg.write_text('kafka = {\n  brokers = "127.0.0.1:1";\n  bogus = 1;\n};\n'
                   'llama = { model = "/m.gguf"; };\n')
    out = run(build_dir, "-c", str(cfg), "--check-config")
    assert out.returncode == 3
    assert f"{cfg}:3" in out.stderr and "kafka.bogus" in out.stderr


def test_bad_value_names_file_line_and_key(build_dir, tmp_path):
    cfg = tmp_path / "bad.cfg"
    cfg.write_text('llama = {\n  model = "/m.gguf";\n  slots = 0;\n};\n')
    out = run(build_dir, "-c", str(cfg), "--check-config")
    assert out.returncode == 3
    assert f"{cfg}:3" in out.stderr and "llama.slots" in out.stderr


def test_syntax_error(build_dir, tmp_path):
    cfg = tmp_path / "bad.cfg"
    cfg.write_text('llama = {\n  model = "/m.gguf";\n  slots = = 2;\n};\n')
    out = run(build_dir, "-c", str(cfg), "--check-config")
    assert out.returncode == 3
    assert f"{cfg}:3: syntax error" in out.stderr


def test_missing_file(build_dir, tmp_path):
    out = run(build_dir, "-c", str(tmp_path / "nope.cfg"))
    assert out.returncode == 3
    assert "nope.cfg" in out.stderr


def test_check_config_accepts_the_example_and_masks_secrets(build_dir):
    from llmq_harness import ROOT
    out = run(build_dir, "-c", str(ROOT / "deploy/worker.example.cfg"), "--check-config")
    assert out.returncode == 0, out.stderr
    assert "configuration OK" in out.stderr


def test_env_override_is_validated(build_dir, tmp_path):
    import os
    cfg = tmp_path / "ok.cfg"
    cfg.write_text('llama = { model = "/m.gguf"; };\n')
    env = dict(os.environ, LLMQ_LLAMA_SLOTS="many")
    out = run(build_dir, "-c", str(cfg), "--check-config", env=env)
    assert out.returncode == 3
    assert "LLMQ_LLAMA_SLOTS" in out.stderr
    env = dict(os.environ, LLMQ_KAFKA_BROKERS="127.0.0.9:9092")
    out = run(build_dir, "-c", str(cfg), "--check-config", env=env)
    assert out.returncode == 0, out.stderr
    assert "127.0.0.9:9092" in out.stdout


def test_usage_errors_and_info_flags(build_dir):
    assert run(build_dir).returncode == 2
    assert run(build_dir, "--nope").returncode == 2
    out = run(build_dir, "--help")
    assert out.returncode == 0 and "usage: llmq-worker" in out.stdout
    out = run(build_dir, "--version")
    assert out.returncode == 0 and out.stdout.startswith("llmq-worker ")
