package main

import "net"

func dialRaw(path string) (net.Conn, error) { return net.Dial("unix", path) }
