# Sourced by the scripts (from the checkout's root): MOBILENET_WEIGHTS is the exact MobileNetV2 (alpha 0.35) ImageNet
# file in ../shared/weights beside the checkout when it is there, else "imagenet" (the Keras cache, else the download).
MOBILENET_WEIGHTS=../shared/weights/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5
[ -f "$MOBILENET_WEIGHTS" ] || MOBILENET_WEIGHTS=imagenet
