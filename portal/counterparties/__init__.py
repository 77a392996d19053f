"""取引先 (counterparties) and their signing authorities (契約締結権限者): the registry contracts draw on."""
