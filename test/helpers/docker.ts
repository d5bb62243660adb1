// The docker CLI runner lives with the docker provider stand-in; the system tests use it too.
export * from '../../harness/plugins/docker/cli';
