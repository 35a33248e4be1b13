"""Hardware control: the nodes' BMCs, driven the way each node's `mgt` says.

- `target`: where and how a node is controlled (its effective `mgt` or
  `power`, `bmc`, `bmcport`, `bmcusername`, `bmcpassword`), the errors one
  node can have, and the `Driver` interface every method implements.
- `ipmi`: the IPMI 2.0 driver, through pyghmi (blocking: worker threads only).
- `redfish`: the Redfish driver, through sushy (blocking too).
- `actions`: rpower, rsetboot and rnetboot as xCAT does them, over any driver.
- `fanout`: many nodes at once, a bounded number of sessions, a timeout per
  node and one retry, each node's outcome reported as soon as it is known.
"""
