"""cpu_features: the CPU's flags from a cpuinfo file."""

from kaleido_tf.utils.cpu_features import cpu_flags, has_native_bfloat16


def _cpuinfo(tmp_path, flags_line):
    path = tmp_path / "cpuinfo"
    path.write_text(f"processor\t: 0\nmodel name\t: some cpu\n{flags_line}\n\nprocessor\t: 1\n")
    return str(path)


def test_x86_flags_with_and_without_bfloat16_units(tmp_path):
    amx = _cpuinfo(tmp_path, "flags\t\t: fpu sse2 avx512f avx512_bf16 amx_bf16 amx_tile")
    assert cpu_flags(amx) >= {"avx512f", "avx512_bf16", "amx_bf16"}
    assert has_native_bfloat16(amx) is True
    older = _cpuinfo(tmp_path, "flags\t\t: fpu sse2 avx2 avx512f")
    assert has_native_bfloat16(older) is False


def test_arm_features_line(tmp_path):
    assert has_native_bfloat16(_cpuinfo(tmp_path, "Features\t: fp asimd sve bf16")) is True
    assert has_native_bfloat16(_cpuinfo(tmp_path, "Features\t: fp asimd")) is False


def test_unknown_when_there_is_no_cpuinfo_or_no_flags(tmp_path):
    assert cpu_flags(str(tmp_path / "absent")) is None and has_native_bfloat16(str(tmp_path / "absent")) is None
    assert has_native_bfloat16(_cpuinfo(tmp_path, "bogomips\t: 4000")) is None
