"""Golden fixtures for the weight importers, made by the reference frameworks themselves.

Run from the repository root (the files land next to this script):
    KERAS_BACKEND=torch /work/venv/bin/python tests/golden/make_golden.py
with torch and keras 3 from PyPI (TensorFlow is not needed: Keras runs on its torch backend) and
h5py. tests/cpu/test_golden_import.cpp imports each weight file with cu3d, runs the same input and
compares cu3d's logits with the framework's (fp32, relative error < 1e-4). CI needs no Python:
the fixtures are committed (each well under 1 MB; the models are the presets at reduced widths on
small inputs, and the test scales the presets the same way).

Files, all with random weights drawn from fixed seeds:
  c3d_pytorch.safetensors        PyTorch C3D state dict (c3d-pytorch's key names, NCDHW filters,
                                 fc6 columns in the (C, D, H, W) flatten order), channels 1/32 of
                                 C3D's, fc6/fc7 64 units, 5 classes
  keras3d.weights.h5             keras3d at 1/4 width (8, 16 filters, Dense 32), Keras 3 layout
  keras3d_keras2.h5              the same weights in Keras 2's save_weights layout (written here
                                 with h5py as Keras 2's save_weights_to_hdf5_group writes it:
                                 numpy fixed-length byte-string attributes, names "<layer>/kernel:0";
                                 Keras 3 itself cannot write that layout)
  keras3d_hwdc_model.h5          keras3d trained on (H, W, D, C) clips as the Keras scripts feed
                                 them, saved whole with Keras 3's legacy model.save('.h5')
                                 (weights under model_weights/)
  keras3d_bn.weights.h5          keras3d-bn at 1/4 width with non-trivial batch-norm statistics
  cnn2d.weights.h5               cnn2d at 1/4 width on 20x20 gray frames
  <name>_io.safetensors          for each model: "input" in cu3d's channels-last (N, D, H, W, C)
                                 order (N, H, W, C for cnn2d) and the framework's pre-softmax
                                 "logits" (N, classes), in inference mode
"""

import json
import os
import struct
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")

import h5py  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from keras import layers  # noqa: E402

HERE = Path(__file__).resolve().parent
CLASSES = 5
BATCH = 2


def save_safetensors(path, tensors):
    """The safetensors format (8-byte header size, JSON header, raw little-endian data), written
    by hand so the script needs no safetensors package."""
    header, blobs, offset = {}, [], 0
    for name, array in tensors.items():
        data = np.ascontiguousarray(array, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


# --- PyTorch: the C3D of c3d-pytorch (DavideA/c3d-pytorch, C3D_model.py) at reduced width ---

class C3D(torch.nn.Module):
    def __init__(self, widths, fc, classes):
        super().__init__()
        c1, c2, c3, c4, c5 = widths
        conv = lambda i, o: torch.nn.Conv3d(i, o, kernel_size=3, padding=1)  # noqa: E731
        self.conv1, self.conv2 = conv(3, c1), conv(c1, c2)
        self.conv3a, self.conv3b = conv(c2, c3), conv(c3, c3)
        self.conv4a, self.conv4b = conv(c3, c4), conv(c4, c4)
        self.conv5a, self.conv5b = conv(c4, c5), conv(c5, c5)
        self.pool1 = torch.nn.MaxPool3d((1, 2, 2), (1, 2, 2))
        self.pool = torch.nn.MaxPool3d(2, 2)
        self.pool5 = torch.nn.MaxPool3d(2, 2, padding=(0, 1, 1))
        self.fc_units, self.classes = fc, classes

    def trunk(self, x):
        r = torch.relu
        x = self.pool1(r(self.conv1(x)))
        x = self.pool(r(self.conv2(x)))
        x = self.pool(r(self.conv3b(r(self.conv3a(x)))))
        x = self.pool(r(self.conv4b(r(self.conv4a(x)))))
        return self.pool5(r(self.conv5b(r(self.conv5a(x)))))

    def add_head(self, flat):
        """fc6's fan-in is what the trunk leaves of the input (8192 at 16x112x112)."""
        self.fc6 = torch.nn.Linear(flat, self.fc_units)
        self.fc7 = torch.nn.Linear(self.fc_units, self.fc_units)
        self.fc8 = torch.nn.Linear(self.fc_units, self.classes)

    def forward(self, x):
        x = self.trunk(x).flatten(1)  # c3d-pytorch's view(-1, 8192): (C, D, H, W) order
        x = torch.relu(self.fc6(x))
        x = torch.relu(self.fc7(x))
        return self.fc8(x)


def make_c3d():
    torch.manual_seed(5)
    # C3D's 64, 128, 256, 512, 512 filters / 32; 16 frames of 32x16 give pool5 1x2x1 (x16).
    model = C3D((2, 4, 8, 16, 16), fc=64, classes=CLASSES)
    x = torch.rand(BATCH, 3, 16, 32, 16) * 2 - 1  # N, C, D, H, W
    with torch.no_grad():
        model.add_head(model.trunk(x).flatten(1).shape[1])
        # He-normal weights keep the activations' scale through the ReLUs; PyTorch's default
        # (uniform, a third of the variance) shrinks them layer by layer until the logits are
        # the biases alone and no longer test the trunk or fc6's column order.
        for name, p in model.named_parameters():
            if name.endswith(".weight"):
                torch.nn.init.kaiming_normal_(p)
            else:
                p.uniform_(-0.1, 0.1)
        model.eval()
        logits = model(x)
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    save_safetensors(HERE / "c3d_pytorch.safetensors", state)
    save_safetensors(HERE / "c3d_pytorch_io.safetensors",
                     {"input": x.permute(0, 2, 3, 4, 1).numpy(), "logits": logits.numpy()})


# --- Keras: the Keras 3D CNN family (kcct-fujimotolab/3DCNN) at reduced width ---

def keras_block(x, filters, first, second, conv=layers.Conv3D, pool=layers.MaxPooling3D):
    x = conv(filters, 3, padding="same", activation=first)(x)
    x = conv(filters, 3, padding="same", activation=second)(x)
    x = pool(3, padding="same")(x)
    return layers.Dropout(0.25)(x)


def keras3d(input_shape):
    inputs = keras.Input(input_shape)
    x = keras_block(inputs, 8, "relu", "softmax")  # softmax over the channels (axis -1)
    x = keras_block(x, 16, "relu", "softmax")
    x = layers.Flatten()(x)
    x = layers.Dense(32, activation="sigmoid")(x)
    x = layers.Dropout(0.5)(x)
    return keras.Model(inputs, layers.Dense(CLASSES)(x))  # logits: the scripts' softmax left off


def keras3d_bn(input_shape):
    inputs = keras.Input(input_shape)
    x = inputs
    for filters in (8, 16, 16):
        x = keras_block(x, filters, "relu", "relu")
    x = layers.Flatten()(x)
    x = layers.Dense(32, activation="relu")(x)
    x = layers.BatchNormalization()(x)  # momentum 0.99, epsilon 1e-3
    x = layers.Dropout(0.5)(x)
    return keras.Model(inputs, layers.Dense(CLASSES)(x))


def cnn2d(input_shape):
    inputs = keras.Input(input_shape)
    x = inputs
    for filters in (8, 16):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = layers.Conv2D(filters, 3, padding="valid", activation="relu")(x)
        x = layers.MaxPooling2D(2)(x)
        x = layers.Dropout(0.25)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(32, activation="relu")(x)
    x = layers.Dropout(0.5)(x)
    return keras.Model(inputs, layers.Dense(CLASSES)(x))


def randomize(model, rng):
    """Random values for every tensor the importer moves: kernels He-normal times 4, biases and
    batch-norm state uniform. Keras's glorot kernels and zero biases leave keras3d's logits almost
    the same for any input (each softmax over channels flattens its input towards 1/filters), and
    the test would then not see a wrong kernel layout; the C++ test checks that the two samples'
    logits differ."""
    for layer in model.layers:
        values = []
        for w in layer.weights:
            shape = tuple(w.shape)
            if w.name == "kernel":
                v = rng.normal(0, 4 * np.sqrt(2 / np.prod(shape[:-1])), shape)
            elif w.name in ("bias", "beta", "moving_mean"):
                v = rng.uniform(-0.2, 0.2, shape)
            else:  # gamma, moving_variance
                v = rng.uniform(0.5, 1.5, shape)
            values.append(v.astype("float32"))
        layer.set_weights(values)


def logits_of(model, x):
    return keras.ops.convert_to_numpy(model(x, training=False)).astype("float32")


def save_keras2_weights(model, path):
    """Keras 2's save_weights layout, as keras/saving/legacy/hdf5_format.py writes it."""
    def names(values):
        return np.asarray([v.encode("utf8") for v in values])  # numpy 'S' (fixed length)

    with h5py.File(path, "w") as f:
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.13.1"
        f.attrs["layer_names"] = names([layer.name for layer in model.layers[1:]])
        for layer in model.layers[1:]:  # Keras 2 lists no InputLayer in a model's layers
            group = f.create_group(layer.name)
            weight_names = [f"{layer.name}/{w.name}:0" for w in layer.weights]
            group.attrs["weight_names"] = names(weight_names)
            for name, w in zip(weight_names, layer.weights):
                group.create_dataset(name, data=keras.ops.convert_to_numpy(w))


def make_keras():
    rng = np.random.default_rng(7)
    keras.utils.set_random_seed(7)
    x = rng.uniform(0, 1, (BATCH, 10, 16, 20, 3)).astype("float32")  # N, D, H, W, C

    model = keras3d(x.shape[1:])
    randomize(model, rng)
    model.save_weights(HERE / "keras3d.weights.h5")
    save_keras2_weights(model, HERE / "keras3d_keras2.h5")
    save_safetensors(HERE / "keras3d_io.safetensors", {"input": x, "logits": logits_of(model, x)})

    # The Keras scripts' clips are (H, W, D, C); their kernels are then (kh, kw, kd, in, out).
    x_hwdc = x.transpose(0, 2, 3, 1, 4)
    model = keras3d(x_hwdc.shape[1:])
    randomize(model, rng)
    model.save(HERE / "keras3d_hwdc_model.h5")
    save_safetensors(HERE / "keras3d_hwdc_io.safetensors",
                     {"input": x, "logits": logits_of(model, x_hwdc)})

    model = keras3d_bn(x.shape[1:])
    randomize(model, rng)
    model.save_weights(HERE / "keras3d_bn.weights.h5")
    save_safetensors(HERE / "keras3d_bn_io.safetensors", {"input": x, "logits": logits_of(model, x)})

    frames = rng.uniform(0, 1, (BATCH, 20, 20, 1)).astype("float32")  # N, H, W, C
    model = cnn2d(frames.shape[1:])
    randomize(model, rng)
    model.save_weights(HERE / "cnn2d.weights.h5")
    save_safetensors(HERE / "cnn2d_io.safetensors",
                     {"input": frames, "logits": logits_of(model, frames)})


if __name__ == "__main__":
    make_c3d()
    make_keras()
    for path in sorted(HERE.glob("*.h5")) + sorted(HERE.glob("*.safetensors")):
        print(f"{path.name:32} {path.stat().st_size:8} bytes")
