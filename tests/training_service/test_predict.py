"""model_version_predict: a registered version segments an image row like evaluation does."""

import numpy as np
import pytest

from config.errors import Conflict
from training.services import backbone as bb
from training.services.data import file_download, training_storage
from training.services.predict import image_pixels, model_version_predict, weights_file


def test_prediction_is_a_uint32_label_image_equal_to_the_backbone_run_directly(tworld, tmodel, tmp_path):
    image = tworld.images[0]
    labels = model_version_predict(model_version=tmodel, image=image)
    assert labels.dtype == np.uint32 and labels.shape == (image.height, image.width)
    # The same weights through the backbone's own predict give the same cells.
    local = file_download(tmodel.weights, tmp_path / "w.pt")
    direct = bb.predict("cellpose", [image_pixels(image)], weights=local, options=tmodel.options,
                        hyperparameters=tmodel.hyperparameters)[0]
    assert np.array_equal(labels, direct.astype(np.uint32))
    # Pixels given directly answer the same as the row.
    again = model_version_predict(model_version=tmodel, image=image_pixels(image))
    assert np.array_equal(again, labels)


def test_weights_changed_in_storage_are_refused(tworld, tmodel):
    weights_file.cache_clear()
    storage = training_storage()
    storage.delete(tmodel.weights)
    from django.core.files.base import ContentFile

    storage.save(tmodel.weights, ContentFile(b"not the registered weights"))
    with pytest.raises(Conflict, match="changed in storage"):
        model_version_predict(model_version=tmodel, image=tworld.images[0])
    weights_file.cache_clear()
