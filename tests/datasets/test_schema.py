"""Schema strings, presets and length checks."""

import pytest

from kaleido_tf.datasets import KNOWN_FIELD_LENGTHS, SCHEMA_PRESETS, FieldSpec, Schema, get_schema, known_field_lengths

# The --input_schema strings of the original run scripts (pretraining, category finetuning, retrieval).
ORIGINAL_PRETRAIN = (
    "input_ids:int:64,input_mask:int:64,segment_ids:int:64,masked_lm_positions:int:10,masked_lm_ids:int:10,"
    "masked_lm_weights:float:10,img_feature_convert_rotation:float:2048,img_feature_convert_jigsaw:float:8192,"
    "img_feature_convert_camouflage:float:18432,img_feature_convert_grey_mask:float:32768,"
    "img_feature_convert_blank_mask:float:51200,image_mask:int:55,img_loc_position_rotation:int:5,"
    "img_loc_position_jigsaw:int:20,img_loc_position_camouflage:int:35,img_loc_position_grey_mask:int:80,"
    "img_loc_position_blank_mask:int:125,img_subtasks_flag:int:1,img_grey_lm_ids:int:2,img_blank_lm_ids:int:3,"
    "img_rotate_gt:int:1,img_jigsaw_gt:int:1,img_camouflage_gt:int:1,img_grey_mask_gt:float:4096,"
    "nx_sent_labels:int:1"
)
_IMAGE = (
    "img_feature_convert_rotation:float:2048,img_feature_convert_jigsaw:float:8192,"
    "img_feature_convert_camouflage:float:18432,img_feature_convert_grey_mask:float:32768,"
    "img_feature_convert_blank_mask:float:51200,image_mask:int:55,img_loc_position_rotation:int:5,"
    "img_loc_position_jigsaw:int:20,img_loc_position_camouflage:int:35,img_loc_position_grey_mask:int:80,"
    "img_loc_position_blank_mask:int:125"
)
ORIGINAL_FINETUNE = (
    "text_prod_id:str:1,input_ids:int:64,input_mask:int:64,segment_ids:int:64,prod_desc:str:1,"
    "image_prod_id:str:1,prod_img_id:str:1," + _IMAGE + ",img_category:str:1,img_category_id:int:1,"
    "img_subcategory:str:1,img_subcategory_id:int:1"
)
ORIGINAL_RETRIEVAL = (
    "text_prod_id:str:1,input_ids:int:64,input_mask:int:64,segment_ids:int:64,prod_desc:str:1,"
    "nx_sent_labels:int:1,image_prod_id:str:1,prod_img_id:str:1," + _IMAGE
)


def test_parse_keeps_order_types_and_lengths():
    schema = Schema.parse("b:int:3, a:float:10 ,c:str:1")
    assert schema.names == ("b", "a", "c")
    assert schema["a"] == FieldSpec("a", "float", 10)
    assert schema[0].name == "b"
    assert len(schema) == 3 and "c" in schema and "z" not in schema
    assert schema.to_string() == "b:int:3,a:float:10,c:str:1"
    assert Schema.parse(schema.to_string()) == schema


def test_base64_type_is_read_as_float():
    assert Schema.parse("f:base64:8")["f"] == FieldSpec("f", "float", 8)


@pytest.mark.parametrize(
    "text, pattern",
    [
        ("", "empty"),
        ("   ", "empty"),
        ("a:int:3,", "item 2 is empty"),
        ("a:int", "expected name:type:length"),
        ("a:double:3", "unknown type 'double' for field 'a'"),
        ("a:int:x", "length 'x' of field 'a' is not a positive integer"),
        ("a:int:0", "length '0' of field 'a' is not a positive integer"),
        ("a:int:-2", "length '-2' of field 'a'"),
        ("a:int:2,a:float:3", "duplicate field name 'a'"),
        ("a:str:2", "str field holds one string"),
        ("a b:int:2", "not a valid name"),
    ],
)
def test_parse_errors_name_the_problem(text, pattern):
    with pytest.raises(ValueError, match=pattern):
        Schema.parse(text)


def test_field_spec_validation():
    with pytest.raises(ValueError, match="unknown type 'bool'"):
        FieldSpec("x", "bool", 1)
    with pytest.raises(ValueError, match="positive integer"):
        FieldSpec("x", "int", 0)
    assert FieldSpec("img_feature_convert_rotation", "float", 2048).is_feature
    assert not FieldSpec("masked_lm_weights", "float", 10).is_feature
    assert not FieldSpec("img_loc_position_blank_mask", "float", 125).is_feature
    assert not FieldSpec("ids", "int", 2048).is_feature


def test_presets_follow_the_original_scripts_with_camouflage_45():
    for preset, original in (
        ("pretrain", ORIGINAL_PRETRAIN),
        ("finetune", ORIGINAL_FINETUNE),
        ("retrieval", ORIGINAL_RETRIEVAL),
    ):
        fixed = Schema.parse(original.replace("camouflage:int:35", "camouflage:int:45"))
        assert SCHEMA_PRESETS[preset] == fixed, preset
        assert get_schema(preset) is SCHEMA_PRESETS[preset]
    pretrain = get_schema("pretrain")
    assert pretrain["img_loc_position_camouflage"].length == 9 * 5
    assert sum(spec.length for spec in pretrain if spec.name.startswith("img_feature_convert_")) == 55 * 2048


def test_original_35_gets_a_clear_error():
    with pytest.raises(ValueError) as info:
        get_schema(ORIGINAL_PRETRAIN)
    message = str(info.value)
    assert "img_loc_position_camouflage" in message and "length 35" in message and "expects 45" in message


def test_length_checks_follow_the_configuration():
    text = "input_ids:int:128,img_loc_position_jigsaw:int:20"
    with pytest.raises(ValueError, match="'input_ids' has length 128 .* expects 64"):
        get_schema(text)
    assert get_schema(text, expected_lengths=known_field_lengths(text_seq_len=128))["input_ids"].length == 128
    assert get_schema("input_ids:int:7", expected_lengths=None)["input_ids"].length == 7
    assert KNOWN_FIELD_LENGTHS["img_grey_mask_gt"] == 4096
    assert known_field_lengths(patch_feature_size=16)["img_feature_convert_blank_mask"] == 25 * 16
    assert get_schema("custom_field:int:3")["custom_field"].length == 3  # unknown names are not checked


def test_get_schema_errors():
    with pytest.raises(ValueError, match="unknown schema preset 'pretrian'"):
        get_schema("pretrian")
    with pytest.raises(TypeError):
        get_schema(42)


def test_select_and_lookup_errors():
    schema = Schema.parse("a:int:1,b:int:2,c:int:3")
    assert get_schema(schema.select(["c", "a"])).names == ("a", "c")
    with pytest.raises(KeyError, match="'z'"):
        schema.select(["z"])
    with pytest.raises(KeyError, match="no field 'z'"):
        schema["z"]
