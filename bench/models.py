"""Parameter shapes of reference models, for fusion tests and benchmarks (no framework needed)."""


def _resnet50_shapes():
    """torchvision's resnet50 parameters in definition order: 161 tensors, 25,557,032 values."""
    shapes = [(64, 3, 7, 7), (64,), (64,)]
    inplanes = 64
    for planes, blocks in ((64, 3), (128, 4), (256, 6), (512, 3)):
        for block in range(blocks):
            shapes += [(planes, inplanes, 1, 1), (planes,), (planes,),
                       (planes, planes, 3, 3), (planes,), (planes,),
                       (planes * 4, planes, 1, 1), (planes * 4,), (planes * 4,)]
            if block == 0:  # the downsample branch
                shapes += [(planes * 4, inplanes, 1, 1), (planes * 4,), (planes * 4,)]
            inplanes = planes * 4
    return tuple(shapes + [(1000, 2048), (1000,)])


RESNET50_SHAPES = _resnet50_shapes()
