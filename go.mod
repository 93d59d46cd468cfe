module github.com/packreg/packreg

go 1.26
