"""Training losses. Focal loss is a registered Keras loss, so a compiled model still deserializes;
RUN_DIR models are saved uncompiled and load with ``compile=False`` anyway."""

from edgecnn.tf import keras, tf


@keras.saving.register_keras_serializable(package="edgecnn")
class SparseFocalLoss(keras.losses.Loss):
    """Focal loss (Lin et al. 2017) on integer labels and softmax probabilities.

    ``-(1 - p_t) ** gamma * log(p_t)``: easy, confident examples weigh less, so rare and hard
    classes get more of the gradient. ``gamma=0`` is plain cross-entropy.
    """

    def __init__(self, gamma: float = 2.0, name: str = "sparse_focal_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.gamma = float(gamma)

    def call(self, y_true, y_pred):
        y_true = tf.cast(tf.reshape(y_true, [-1]), tf.int32)
        y_pred = tf.cast(y_pred, tf.float32)
        p_t = tf.gather(y_pred, y_true, axis=-1, batch_dims=1)
        p_t = tf.clip_by_value(p_t, keras.backend.epsilon(), 1.0)
        return -tf.pow(1.0 - p_t, self.gamma) * tf.math.log(p_t)

    def get_config(self):
        return dict(super().get_config(), gamma=self.gamma)


def make_loss(name: str):
    """``crossentropy`` or ``focal``, for integer labels."""
    if name == "focal":
        return SparseFocalLoss()
    return keras.losses.SparseCategoricalCrossentropy()
