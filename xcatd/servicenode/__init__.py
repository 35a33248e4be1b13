"""What runs on a service node only: how it joins the cluster at boot."""
