# An independent check of the demo's claim that keras3d (softmax over channels) stays at chance
# within the demo's budget: trains cu3d's keras3d / keras3d-relu architectures in real Keras 3
# (torch backend) on a `cu3d synth` dataset read as cu3d's keras recipe reads it: 10 frames at
# floor(i*T/10), gray, 32x32 INTER_AREA, (N,10,32,32,1), split 1 of the official lists.
# Needs keras, torch and opencv-python-headless (not needed by the build or the tests).
# Usage: OMP_NUM_THREADS=1 KERAS_BACKEND=torch python bench/keras_reference_training.py \
#            VIDEOS MODEL SCALE EPOCHS [SEED]
#   VIDEOS: a `cu3d synth` folder (the demo's: --classes 4 --groups 10 --clips 6); the decoded
#          clips are cached in VIDEOS/keras_reference.npz
#   MODEL: keras3d | keras3d-relu
#   SCALE: 1 = x/255 ([0,1]); 0 = raw 0..255; c = (x - train mean)/255, as cu3d prep --mean dataset
#          (the demo's shards); c0 = x - train mean, unscaled
import json
import os
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "torch")
import numpy as np
import torch
torch.set_num_threads(1)
import keras
from keras import layers

DEPTH = 10


def read_video(path):
    import cv2
    cap = cv2.VideoCapture(path)
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    cap.release()
    t = len(frames)
    assert t > 0, path
    out = []
    for i in range(DEPTH):
        f = frames[(i * t // DEPTH) % t]
        g = cv2.cvtColor(f, cv2.COLOR_BGR2GRAY)
        out.append(cv2.resize(g, (32, 32), interpolation=cv2.INTER_AREA))
    return np.stack(out)[..., None]  # (D,H,W,1) uint8


def load(root):
    cache = os.path.join(root, "keras_reference.npz")
    if os.path.exists(cache):
        d = np.load(cache)
        return d["xtr"], d["ytr"], d["xte"], d["yte"]
    lst = os.path.join(root, "ucfTrainTestlist")
    classes = {}
    for line in open(os.path.join(lst, "classInd.txt")):
        i, name = line.split()
        classes[name] = int(i) - 1

    def split(fn):
        xs, ys = [], []
        for line in open(os.path.join(lst, fn)):
            rel = line.split()[0]
            xs.append(read_video(os.path.join(root, rel)))
            ys.append(classes[rel.split("/")[0]])
        return np.stack(xs), np.array(ys)

    xtr, ytr = split("trainlist01.txt")
    xte, yte = split("testlist01.txt")
    np.savez(cache, xtr=xtr, ytr=ytr, xte=xte, yte=yte)
    return xtr, ytr, xte, yte


def build(model, nclass):
    second = "softmax" if model == "keras3d" else "relu"
    fc_act = "sigmoid" if model == "keras3d" else "relu"
    m = keras.Sequential([keras.Input((DEPTH, 32, 32, 1))])
    for filters in (32, 64):
        m.add(layers.Conv3D(filters, (3, 3, 3), padding="same"))
        m.add(layers.Activation("relu"))
        m.add(layers.Conv3D(filters, (3, 3, 3), padding="same"))
        m.add(layers.Activation(second))  # softmax over the last axis = channels
        m.add(layers.MaxPooling3D((3, 3, 3), padding="same"))
        m.add(layers.Dropout(0.25))
    m.add(layers.Flatten())
    m.add(layers.Dense(512, activation=fc_act))
    m.add(layers.Dropout(0.5))
    m.add(layers.Dense(nclass, activation="softmax"))
    m.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy",
              metrics=["accuracy"])
    return m


def main():
    if len(sys.argv) < 5:
        sys.exit(__doc__ or "usage: keras_reference_training.py VIDEOS MODEL SCALE EPOCHS [SEED]")
    root, model, scale, epochs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    seed = int(sys.argv[5]) if len(sys.argv) > 5 else 1
    keras.utils.set_random_seed(seed)
    xtr, ytr, xte, yte = load(root)
    f = 1.0 if scale in ("0", "c0") else 1.0 / 255.0
    mean = float(xtr.astype("float64").mean()) if scale.startswith("c") else 0.0  # 1 channel
    xtr = (xtr.astype("float32") - mean) * f
    xte = (xte.astype("float32") - mean) * f
    nclass = int(ytr.max()) + 1
    Ytr = keras.utils.to_categorical(ytr, nclass)
    Yte = keras.utils.to_categorical(yte, nclass)
    print(f"data train {xtr.shape} test {xte.shape} classes {nclass} range [{xtr.min()},{xtr.max()}]",
          flush=True)
    m = build(model, nclass)
    t0 = time.time()
    h = m.fit(xtr, Ytr, batch_size=8, epochs=epochs, validation_data=(xte, Yte), verbose=2)
    dt = time.time() - t0
    tr_eval = m.evaluate(xtr, Ytr, verbose=0)[1]  # train acc without dropout
    res = dict(model=model, scale=scale, epochs=epochs, seed=seed,
               train_acc=h.history["accuracy"], test_acc=h.history["val_accuracy"],
               train_loss=h.history["loss"], train_acc_eval=tr_eval, seconds=round(dt, 1))
    print("RESULT " + json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
