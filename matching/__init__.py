"""FAISS galleries: add, remove, search, (de)serialise. Imports only numpy and faiss."""
