module github.com/balancekit/lb/benchmarks

go 1.26

replace github.com/balancekit/lb => ../

require (
	github.com/balancekit/lb v0.0.0-00010101000000-000000000000
	github.com/buraksezer/consistent v0.10.0
	github.com/go-kit/kit v0.13.0
	github.com/lafikl/liblb v0.0.0-20170702133218-2321f9d41430
	github.com/smallnest/weighted v0.0.0-20230419055410-36b780e40a7a
	github.com/stretchr/testify v1.11.1
	github.com/vulcand/oxy/v2 v2.0.0
	github.com/zehuamama/balancer v0.2.0
)

require (
	github.com/HdrHistogram/hdrhistogram-go v1.1.2 // indirect
	github.com/davecgh/go-spew v1.1.1 // indirect
	github.com/go-kit/log v0.2.0 // indirect
	github.com/go-logfmt/logfmt v0.5.1 // indirect
	github.com/lafikl/consistent v0.0.0-20220512074542-bdd3606bfc3e // indirect
	github.com/minio/blake2b-simd v0.0.0-20160723061019-3f5f724cb5b1 // indirect
	github.com/nxadm/tail v1.4.11 // indirect
	github.com/pmezard/go-difflib v1.0.0 // indirect
	github.com/segmentio/fasthash v1.0.3 // indirect
	github.com/starwander/GoFibonacciHeap v0.0.0-20190508061137-ba2e4f01000a // indirect
	golang.org/x/exp v0.0.0-20200119233911-0405dc783f0a // indirect
	gopkg.in/yaml.v2 v2.4.0 // indirect
	gopkg.in/yaml.v3 v3.0.1 // indirect
)
