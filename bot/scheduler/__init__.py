"""`python -m bot scheduler`: periodic jobs (commitment alerts, staff e-mail), one at a time across processes."""
