"""Errors a user can act on: each names the file or field and the fix."""


class DataError(ValueError):
    """Bad or missing data: the message names the file, row or field, and what to do."""


WHERE_TO_GET = {
    "fer2013": (
        "FER2013 is read in two layouts: (1) the image-folder release "
        "(<dir>/train/<class>/Training_<id>.jpg, <dir>/test/<class>/PublicTest_<id>.jpg and PrivateTest_<id>.jpg; "
        "e.g. Kaggle dataset 'msambare/fer2013'), given as <dir> or as its parent holding fer2013/; "
        "(2) the original challenge CSV with columns emotion,pixels,Usage (fer2013.csv from the Kaggle "
        "'challenges-in-representation-learning-facial-expression-recognition-challenge'), given as the file "
        "or a folder holding fer2013.csv."
    ),
    "ckplus": (
        "CK+ is read as the 48x48 crop CK+48: <dir>/<class>/S<subject>_<sequence>_<frame>.png with classes "
        "anger, contempt, disgust, fear, happy, sadness, surprise (e.g. Kaggle dataset 'shawon10/ckplus'); "
        "give <dir> itself, its parent, or a folder holding ckplus/CK+48. The full CK+ is licensed by its "
        "authors (jeffcohn.net/Resources)."
    ),
}
