"""PDFs the portal writes itself (合意締結証明書, 電子契約利用申出書, the blank 別記様式), made to be kept.

They are PDF/A-2b with the font embedded as a subset, so they read the same in ten years on a
viewer that has no Japanese font; see archival.py.
"""
