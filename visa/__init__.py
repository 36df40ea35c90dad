"""Travel documents and visas: ICAO 9303 MRZ, visas, the stay calculator, entry/exit rules."""
