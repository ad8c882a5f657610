import dataclasses

import pytest

from riffusion.spectrogram_params import SpectrogramParams


def test_defaults_and_derived_sizes():
    p = SpectrogramParams()
    assert (p.n_fft, p.win_length, p.hop_length) == (17640, 4410, 441)
    assert p.num_frames(int(5.110 * 44100)) == 512
    assert p.num_frames(int(5.120 * 44100)) == 513
    assert p.num_samples(512) == 225351
    assert p.duration_s(512) == pytest.approx(5.11)


def test_value_semantics():
    assert SpectrogramParams() == SpectrogramParams()
    assert hash(SpectrogramParams()) == hash(SpectrogramParams())
    assert SpectrogramParams(stereo=True) != SpectrogramParams()
    with pytest.raises(dataclasses.FrozenInstanceError):
        SpectrogramParams().stereo = True  # type: ignore[misc]


def test_exif_round_trip():
    p = SpectrogramParams(stereo=True, sample_rate=48000, num_frequencies=256, max_frequency=12000)
    exif = p.to_exif()
    assert exif[SpectrogramParams.ExifTags.SAMPLE_RATE] == 48000
    assert exif[SpectrogramParams.ExifTags.STEREO] == 1
    assert SpectrogramParams.from_exif(exif) == p


def test_exif_tag_ids():
    tags = SpectrogramParams.ExifTags
    assert [t.value for t in tags] == [11000, 11005, 11010, 11020, 11030, 11040, 11050, 11060, 11070, 11080]


def test_from_exif_missing_tag_raises():
    exif = SpectrogramParams().to_exif()
    del exif[SpectrogramParams.ExifTags.NUM_FREQUENCIES]
    with pytest.raises(KeyError, match="NUM_FREQUENCIES"):
        SpectrogramParams.from_exif(exif)


def test_dict_round_trip_and_unknown_field():
    p = SpectrogramParams(step_size_ms=20)
    assert SpectrogramParams.from_dict(p.to_dict()) == p
    with pytest.raises(ValueError, match="unknown SpectrogramParams fields"):
        SpectrogramParams.from_dict({"sample_rte": 1})


@pytest.mark.parametrize(
    "field,value",
    [("sample_rate", 0), ("max_frequency", 30000), ("min_frequency", 20000), ("num_frequencies", 0),
     ("mel_scale_type", "bark"), ("power_for_image", 0)],
)
def test_invalid_values_name_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        SpectrogramParams(**{field: value})
