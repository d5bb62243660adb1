// The docker CLI runner lives with the docker provider stand-in; the realizer and the system tests share it.
export * from '../../harness/plugins/docker/cli';
