from django.http import JsonResponse
from rest_framework import generics, serializers
from .models import Item, Category

class CategorySerializer(serializers.ModelSerializer):
    class Meta:
        model = Category
        fields = ["id", "name"]

class ItemSerializer(serializers.ModelSerializer):
    category = CategorySerializer(read_only=True)
    label = serializers.SerializerMethodField()

    class Meta:
        model = Item
        fields = ["id", "name", "price", "tags", "category", "created_at", "label"]

    def get_label(self, obj):
        if obj.price > 50:
            return f"{obj.name} (premium)"
        return obj.name

class ItemList(generics.ListAPIView):
    queryset = Item.objects.select_related("category").order_by("id")
    serializer_class = ItemSerializer

    def get_queryset(self):
        qs = super().get_queryset()
        limit = int(self.request.GET.get("limit", 20))
        return qs[:limit]

class ItemDetail(generics.RetrieveAPIView):
    queryset = Item.objects.select_related("category")
    serializer_class = ItemSerializer

def health(request):
    return JsonResponse({"ok": True})
