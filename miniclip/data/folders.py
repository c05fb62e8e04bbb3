"""Real image-caption data: a folder of images and a CSV/TSV file of ``filename, caption`` rows."""
import csv
from pathlib import Path

from PIL import Image


class ImageTextFolder:
    """Image–caption pairs listed in a CSV or TSV file next to (or above) the images.

    The captions file has a header row naming an image column and a caption column
    (``filename,caption`` by default); image paths are relative to ``root``. A ``.tsv``
    file is read tab-separated, anything else comma-separated. Images are opened lazily, in
    ``__getitem__``; a missing or unreadable file raises an error that names it.

    Args:
        root: folder the image paths are relative to.
        captions: path of the captions file (relative to ``root`` unless absolute).
        image_column, caption_column: header names of the two columns.
    """

    def __init__(self, root, captions="captions.csv", *, image_column="filename",
                 caption_column="caption"):
        self.root = Path(root)
        captions_path = self.root / captions
        delimiter = "\t" if captions_path.suffix.lower() == ".tsv" else ","
        with open(captions_path, newline="", encoding="utf-8") as file:
            reader = csv.DictReader(file, delimiter=delimiter)
            missing = {image_column, caption_column} - set(reader.fieldnames or ())
            if missing:
                raise ValueError(f"{captions_path}: header {reader.fieldnames} lacks the "
                                 f"column(s) {sorted(missing)}")
            self.items = [(row[image_column], row[caption_column]) for row in reader]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        filename, caption = self.items[index]
        path = self.root / filename
        try:
            image = Image.open(path)
            image.load()  # PIL reads lazily; decode now so a corrupt file fails here, by name
        except OSError as error:  # FileNotFoundError and PIL's UnidentifiedImageError included
            raise OSError(f"cannot read image {path} (item {index} of {self.root}): "
                          f"{error}") from error
        return image, caption
