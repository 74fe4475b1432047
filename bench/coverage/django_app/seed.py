import os, django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")
django.setup()
from django.core.management import call_command
call_command("makemigrations", "shop", verbosity=0)
call_command("migrate", verbosity=0)
from shop.models import Item, Category
cats = [Category.objects.create(name=f"cat{i}") for i in range(5)]
for i in range(200):
    Item.objects.create(name=f"item{i}", price=i * 0.75, tags=["a", str(i)], category=cats[i % 5])
