package store

// SniffImage exposes sniffImage to the tests of package store_test.
var SniffImage = sniffImage
