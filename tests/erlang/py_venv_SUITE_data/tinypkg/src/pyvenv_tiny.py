def where():
    return "editable"
