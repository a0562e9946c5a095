from customer_updates.cli import main

main()
