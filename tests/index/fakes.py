"""A tiny deterministic model with the search interface, and a hand-made finetune catalog for the index tests."""

import os

import keras
import numpy as np

from kaleido_tf.datasets.tfrecord_writer import TFRecordShardWriter, shard_filename, write_schema_json
from kaleido_tf.preprocessors.schemas import preprocess_schema

TEXT_LENGTH = 8
FEATURE_SIZE = 6
VOCAB = 64
LEVELS = (("rotation", 1), ("jigsaw", 4), ("camouflage", 9), ("grey_mask", 16), ("blank_mask", 25))


@keras.saving.register_keras_serializable(package="kaleido_tf_tests")
class FakeSearchModel(keras.Model):
    """Text: masked mean of token embeddings; image: a projection of the level-1 patch feature; both unit length.
    ITM: 10 x the cosine of the two (plus `itm_bias` on the match logit)."""

    def __init__(self, dim=4, seed=0, itm_bias=0.0, **kwargs):
        super().__init__(**kwargs)
        self.dim, self.seed, self.itm_bias = dim, seed, itm_bias
        self.token_embedding = keras.layers.Embedding(
            VOCAB, dim, embeddings_initializer=keras.initializers.RandomNormal(seed=seed)
        )
        self.image_projection = keras.layers.Dense(
            dim, use_bias=False, kernel_initializer=keras.initializers.RandomNormal(seed=seed + 1)
        )

    def build(self, input_shape=None):
        self.token_embedding.build((None, TEXT_LENGTH))
        self.image_projection.build((None, FEATURE_SIZE))
        self.built = True

    def embed_text(self, features, training=False):
        ids = keras.ops.cast(features["input_ids"], "int32") % VOCAB  # real vocabulary ids fold into the tiny table
        mask = keras.ops.cast(features["input_mask"], "float32")[..., None]  # [B, T, 1]
        mean = keras.ops.sum(self.token_embedding(ids) * mask, axis=1) / keras.ops.sum(mask, axis=1)  # [B, D]
        return keras.ops.normalize(mean, axis=-1)

    def embed_image(self, features, training=False):
        feature = keras.ops.cast(features["img_feature_convert_rotation"], "float32")  # [B, F]
        return keras.ops.normalize(self.image_projection(feature), axis=-1)

    def itm_logits(self, features, training=False):
        cosine = keras.ops.sum(self.embed_text(features) * self.embed_image(features), axis=-1)  # [B]
        return keras.ops.stack([keras.ops.zeros_like(cosine), 10.0 * cosine + self.itm_bias], axis=-1)

    def call(self, features, training=False):
        return self.itm_logits(features)

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "seed": self.seed, "itm_bias": self.itm_bias}


def fake_model(dim=4, seed=0):
    model = FakeSearchModel(dim=dim, seed=seed)
    model.build()
    return model


def product_text_ids(p):
    """Product p's tokens: [CLS]=1, two words, [SEP]=2, padding 0."""
    ids = np.zeros(TEXT_LENGTH, np.int64)
    ids[:4] = [1, 3 + p % 30, 33 + (p * 7) % 30, 2]
    return ids


def write_catalog(directory, num_products=10, images_per_product=(1, 2), num_shards=3, seed=0, split="test"):
    """A preprocessing-output-like tree: directory/finetune/<split>/part-*.tfrecord + schema.json.
    Product p's images have level-1 features near a product vector; a product lives in shard p % num_shards."""
    rng = np.random.default_rng(seed)
    schema = preprocess_schema("finetune", text_length=TEXT_LENGTH, feature_size=FEATURE_SIZE)
    out = os.path.join(directory, "finetune", split)
    os.makedirs(out, exist_ok=True)
    product_vectors = rng.normal(size=(num_products, FEATURE_SIZE))
    examples = [[] for _ in range(num_shards)]
    for p in range(num_products):
        count = images_per_product[p % len(images_per_product)]
        for image in range(count):
            ex = {"text_prod_id": f"p{p:03d}", "image_prod_id": f"p{p:03d}", "prod_img_id": f"p{p:03d}_{image}"}
            ids = product_text_ids(p)
            ex.update(input_ids=ids, input_mask=(ids != 0).astype(np.int64), segment_ids=np.zeros_like(ids))
            ex["prod_desc"] = f"product {p} text"
            for level, patches in LEVELS:
                feats = rng.normal(size=(patches, FEATURE_SIZE)) * 0.1
                if level == "rotation":
                    feats[0] += product_vectors[p]
                ex[f"img_feature_convert_{level}"] = feats.reshape(-1).astype(np.float32)
                ex[f"img_loc_position_{level}"] = np.ones(patches * 5, np.float32)
            ex["image_mask"] = np.ones(55, np.int64)
            ex.update(img_category="tops", img_category_id=0, img_subcategory="tees", img_subcategory_id=0)
            examples[p % num_shards].append(ex)
    for s in range(num_shards):
        with TFRecordShardWriter(os.path.join(out, shard_filename(s, num_shards)), schema) as w:
            for ex in examples[s]:
                w.write({k: (np.asarray(v).reshape(-1) if not isinstance(v, str) else v) for k, v in ex.items()})
    write_schema_json(out, schema, num_examples=sum(map(len, examples)), num_shards=num_shards)
    return out
