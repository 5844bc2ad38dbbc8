"""Per-image `tf.data` operations of the image recipes: augmentation, resizing, normalisation.

Every function maps one image `(H, W, C)` and runs inside `tf.data` on any Keras backend. Images
stay in their raw pixel range (0..255, float32 after `to_float`); the models normalise them in
their first layer (`normalization`), so EfficientTrain's RandAugment sees raw pixels.
"""

import keras
import tensorflow as tf

CIFAR_PAD = 4  # "4 pixels are padded on each side" (He et al., 2016), the standard CIFAR crop
IMAGENET_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
IMAGENET_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)


def to_float(image):
    return tf.cast(image, tf.float32)


def pad_crop_flip(image, padding=CIFAR_PAD):
    """Zero-pads `padding` pixels on each side, takes a random crop of the original size and
    flips it horizontally with probability 1/2 (the standard CIFAR augmentation)."""
    if padding < 0:
        raise ValueError(f"`padding` must be >= 0. Received: padding={padding}")
    shape = tf.shape(image)
    padded = tf.pad(image, [[padding, padding], [padding, padding], [0, 0]])
    cropped = tf.image.random_crop(padded, shape)
    return tf.image.random_flip_left_right(cropped)


def random_resized_crop_flip(image, size, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)):
    """Inception-style crop (area fraction in `scale`, aspect ratio in `ratio`) resized to
    `size` x `size` with bicubic interpolation, then a random horizontal flip: the ImageNet
    training crop of timm / torchvision (`RandomResizedCrop`, `--train_interpolation bicubic`)."""
    begin, crop_size, _ = tf.image.sample_distorted_bounding_box(
        tf.shape(image),
        bounding_boxes=tf.zeros([1, 0, 4]),
        min_object_covered=0.0,
        aspect_ratio_range=ratio,
        area_range=scale,
        max_attempts=10,
        use_image_if_no_bounding_boxes=True,
    )
    crop = tf.slice(image, begin, crop_size)
    crop.set_shape([None, None, image.shape[-1]])  # `slice` forgets the channel count
    resized = tf.image.resize(to_float(crop), (size, size), method="bicubic")
    return tf.image.random_flip_left_right(tf.clip_by_value(resized, 0.0, 255.0))


def resize_center_crop(image, size, crop_fraction=0.875):
    """Resizes the shorter side to `size / crop_fraction` and takes the central `size` x `size`
    crop (ImageNet evaluation: 256 -> 224 at the default 0.875)."""
    if not 0 < crop_fraction <= 1:
        raise ValueError(f"`crop_fraction` must be in (0, 1]. Received: {crop_fraction}")
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = (size / crop_fraction) / tf.reduce_min(shape)
    new_shape = tf.cast(tf.math.round(shape * scale), tf.int32)
    new_shape = tf.maximum(new_shape, size)
    resized = tf.image.resize(to_float(image), new_shape, method="bicubic")
    top = (new_shape[0] - size) // 2
    left = (new_shape[1] - size) // 2
    crop = resized[top : top + size, left : left + size, :]
    crop = tf.ensure_shape(crop, [size, size, image.shape[-1]])
    return tf.clip_by_value(crop, 0.0, 255.0)


def normalization(mean, std):
    """A Keras layer mapping raw pixels to (x - mean) / std per channel (the model's first)."""
    return keras.layers.Normalization(
        mean=list(mean), variance=[s * s for s in std], name="normalize"
    )
