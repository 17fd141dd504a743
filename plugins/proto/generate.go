// Package proto holds the extractor plugin protocol: tributary/plugin/v1/extractor.proto and
// the Go code generated from it, which is committed so that building needs no protoc.
//
// To regenerate after editing the .proto (protoc 3.21+ and the two Go generators on PATH):
//
//	go install google.golang.org/protobuf/cmd/protoc-gen-go@latest
//	go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@latest
//	go generate ./plugins/proto/
package proto

//go:generate protoc --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative tributary/plugin/v1/extractor.proto
