// Package integration holds the black-box tests of the docker-compose stack
// (docker-compose.yml at the repository root): they build the images, bring the stack up,
// drive it through the gateway's WebSocket edge with edge/client and the fake Bot API's
// control endpoints, break parts of it, and tear it down.
//
// The tests carry the build tag "integration" and need a Docker engine and docker-compose
// (or the compose plugin):
//
//	go test -tags integration -v ./integration/
//
// Without an engine every test skips, saying why. .ci/run installs and starts what they need.
//
// The tests share one stack; TestBusClusterLosesANode brings up a second project of its own
// from docker-compose.yml with the override deploy/compose/cluster.yml (three bus nodes,
// bus.replicas 3) and takes it down again.
package integration
